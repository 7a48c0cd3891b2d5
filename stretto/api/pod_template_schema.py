"""core/v1 PodTemplateSpec as a CRD's structural schema, generated from the Kubernetes OpenAPI.

The TrainingJob's `spec.template` is a real PodTemplateSpec, validated as one by the API server
(unknown fields refused under strict field validation, wrong types and unknown enum values refused
always), the way Kubeflow's and JobSet's CRDs embed it. The schema is not written by hand:
`kubectl get --raw /openapi/v3/api/v1 > core-v1.json` (the API server's OpenAPI v3 document for
core/v1; it carries the enums, which the source tree's `api/openapi-spec/v3/api__v1_openapi.json`
lacks), then `python -m stretto.api.pod_template_schema --openapi core-v1.json` writes the checked-in
`core_v1_pod_template_spec.json`, which the CRD generator embeds. An integration test regenerates it
from the running API server and compares.

Conversion: `$ref`/`allOf` are inlined; Quantity and IntOrString become `x-kubernetes-int-or-string`;
the template's ObjectMeta keeps only labels and annotations (all the pod builder reads);
`ephemeralContainers` is left out (the API server refuses it at pod creation); defaults are dropped
(the pod's own defaulting applies when the worker is created) except on list-map keys, which a
structural schema needs; descriptions keep their first sentence, so `kubectl explain` helps without
the CRD growing past what `kubectl apply` and etcd take comfortably.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("core_v1_pod_template_spec.json")
ROOT = "io.k8s.api.core.v1.PodTemplateSpec"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# The regular expression controller-gen puts on resource.Quantity (the API server's own parser is stricter).
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
_OMITTED_FIELDS = {"io.k8s.api.core.v1.PodSpec": {"ephemeralContainers"}}
_KEPT = ("type", "format", "items", "properties", "required", "additionalProperties", "enum",
         "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type")
_CRD_FORMATS = {"int32", "int64", "byte", "date-time"}
_DESCRIPTION_LIMIT = 200


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].replace("\n", " ")
    return sentence if len(sentence) <= _DESCRIPTION_LIMIT else sentence[:_DESCRIPTION_LIMIT - 1].rstrip() + "…"


def _template_metadata() -> dict[str, Any]:
    string_map = {"type": "object", "additionalProperties": {"type": "string"}}
    return {"type": "object", "properties": {
        "labels": {**string_map, "description": "Labels of every worker pod."},
        "annotations": {**string_map, "description": "Annotations of every worker pod."},
    }}


class _Converter:
    def __init__(self, schemas: dict[str, Any]) -> None:
        self.schemas = schemas

    def named(self, name: str, stack: tuple[str, ...]) -> dict[str, Any]:
        if name in stack:
            raise ValueError(f"recursive schema {' -> '.join((*stack, name))}: a CRD cannot embed it")
        if name in (_QUANTITY, _INT_OR_STRING):
            node: dict[str, Any] = {"x-kubernetes-int-or-string": True,
                                    "anyOf": [{"type": "integer"}, {"type": "string"}]}
            if name == _QUANTITY:
                node["pattern"] = QUANTITY_PATTERN
            return node
        if name == _OBJECT_META:
            return _template_metadata()
        source = dict(self.schemas[name])
        omitted = _OMITTED_FIELDS.get(name, set())
        if omitted:
            source["properties"] = {k: v for k, v in source["properties"].items() if k not in omitted}
        return self.convert(source, (*stack, name))

    def convert(self, node: dict[str, Any], stack: tuple[str, ...]) -> dict[str, Any]:
        if "$ref" in node or "allOf" in node:
            refs = [node["$ref"]] if "$ref" in node else [part["$ref"] for part in node["allOf"]]
            if len(refs) != 1:
                raise ValueError(f"cannot inline allOf of {len(refs)} schemas under {stack}")
            out = self.named(refs[0].rsplit("/", 1)[1], stack)
            if "description" in node:
                out = {**out, "description": _first_sentence(node["description"])}
            return out
        out: dict[str, Any] = {}
        if node.get("description"):
            out["description"] = _first_sentence(node["description"])
        for key in _KEPT:
            if key not in node:
                continue
            value = node[key]
            if key == "properties":
                value = {name: self.convert(prop, stack) for name, prop in value.items()}
            elif key in ("items", "additionalProperties"):
                value = self.convert(value, stack)
            elif key == "format" and value not in _CRD_FORMATS:
                continue
            out[key] = value
        if out.get("x-kubernetes-list-type") == "map":
            _keep_list_map_key_defaults(out, node, self, stack)
        return out


def _keep_list_map_key_defaults(out: dict[str, Any], node: dict[str, Any], converter: _Converter,
                                stack: tuple[str, ...]) -> None:
    """A structural schema needs every list-map key required or defaulted: keep those defaults (protocol: TCP)."""
    items = out["items"]
    raw_items = node["items"]
    if "allOf" in raw_items or "$ref" in raw_items:
        ref = raw_items.get("$ref") or raw_items["allOf"][0]["$ref"]
        raw_items = converter.schemas[ref.rsplit("/", 1)[1]]
    for key in out.get("x-kubernetes-list-map-keys", []):
        if key in items.get("required", []):
            continue
        default = raw_items["properties"][key].get("default")
        if default is None:
            raise ValueError(f"list-map key {key} under {stack} is neither required nor defaulted")
        items["properties"][key]["default"] = default


def pod_template_schema(openapi: dict[str, Any]) -> dict[str, Any]:
    """The structural schema of core/v1 PodTemplateSpec from an OpenAPI v3 document of core/v1."""
    schemas = openapi["components"]["schemas"]
    return _Converter(schemas).named(ROOT, ())


@functools.cache
def _checked_in() -> str:
    return SCHEMA_PATH.read_text()


def load() -> dict[str, Any]:
    """The checked-in schema (what the CRD embeds); a fresh copy each call."""
    return dict(json.loads(_checked_in())["schema"])


def quantities_as_strings(value: Any, schema: dict[str, Any]) -> Any:
    """`value` (valid under `schema`) with every resource quantity a string: YAML's `cpu: 64` is a valid
    quantity, but the Kubernetes Python client's models accept only "64"."""
    if schema.get("pattern") == QUANTITY_PATTERN and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {key: quantities_as_strings(item, properties.get(key) or (extra if isinstance(extra, dict) else {}))
                for key, item in value.items()}
    if isinstance(value, list):
        return [quantities_as_strings(item, schema.get("items", {})) for item in value]
    return value


def render(openapi: dict[str, Any], source: str) -> str:
    return json.dumps({"generatedFrom": source, "schema": pod_template_schema(openapi)}, indent=1,
                      sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--openapi", type=Path, required=True,
                        help="Kubernetes' OpenAPI v3 document of core/v1 (kubectl get --raw /openapi/v3/api/v1)")
    parser.add_argument("--source", default=None, help="what to record as its origin (default: the path)")
    args = parser.parse_args(argv)
    openapi = json.loads(args.openapi.read_text())
    SCHEMA_PATH.write_text(render(openapi, args.source or str(args.openapi)))
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
