"""Generate the TrainingJob CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema with `$ref`s, titles, `anyOf [T, null]` for optional fields and
`const`/`default` details; a CRD needs a *structural* OpenAPI v3 schema: every node typed, no refs,
no nulls. `structural_schema` converts one into the other and keeps our `x-kubernetes-*` extensions.
Run `python -m stretto.api.crd` to rewrite the checked-in manifests/crd/trainingjobs.yaml and the
Helm chart's copy.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from stretto import contracts
from stretto.api import pod_template_schema
from stretto.api.models import EMBED_MARKER, JOB_NAME_RULES, TrainingJobSpec, TrainingJobStatus

_DROP = {"title", "additionalProperties"}
_KEEP_DEFAULTS_FOR = {"integer", "number", "string", "boolean"}
_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = _ROOT / "manifests" / "crd" / "trainingjobs.yaml"
CHART_CRD_PATH = _ROOT / "charts" / "stretto" / "crds" / "trainingjobs.yaml"  # Helm installs crds/ first


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(options) == 1:
            merged = {**_resolve(options[0], defs), **rest}
            if merged.get("default", 0) is None:
                merged.pop("default")
            return _resolve(merged, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _resolve(value, defs)
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out.get(bound), bool):
            out[inclusive] = out[bound]  # JSON Schema 2020 form -> OpenAPI 3.0's boolean flag
            out[bound] = True
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if isinstance(out.get("default"), dict | list) or (
        "default" in out and out.get("type") not in _KEEP_DEFAULTS_FOR
    ):
        out.pop("default")
    embedded = out.pop(EMBED_MARKER, None)
    if embedded is not None:
        return overlay(_embedded_schema(embedded), out)
    if out.get("type") == "object" and "properties" not in out and not out.get(
        "x-kubernetes-preserve-unknown-fields"
    ):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _embedded_schema(name: str) -> dict[str, Any]:
    if name != "core/v1.PodTemplateSpec":
        raise ValueError(f"no Kubernetes schema {name!r} to embed")
    return pod_template_schema.load()


def overlay(base: dict[str, Any], rules: dict[str, Any], path: str = "") -> dict[str, Any]:
    """`base` (a Kubernetes schema) with what the models add: CEL rules, bounds, enums, required fields.

    The models may only narrow: a property they name that `base` lacks is a mistake in the models, so
    is a type that differs. Descriptions stay Kubernetes' own (what `kubectl explain` shows).
    """
    out = dict(base)
    for key, value in rules.items():
        if key in ("description", "x-kubernetes-preserve-unknown-fields"):
            continue
        if key == "properties":
            props = dict(base.get("properties", {}))
            for name, prop in value.items():
                if name not in props:
                    raise ValueError(f"the models name {path}.{name}, which the embedded schema does not have")
                props[name] = overlay(props[name], prop, f"{path}.{name}")
            out[key] = props
        elif key == "items":
            out[key] = overlay(base["items"], value, f"{path}[]")
        elif key == "x-kubernetes-validations":
            out[key] = [*base.get(key, []), *value]
        elif key == "required":
            out[key] = sorted({*base.get(key, []), *value})
        elif key == "type" and "type" in base and base["type"] != value:
            raise ValueError(f"{path}: the models say {value}, the embedded schema {base['type']}")
        else:
            out[key] = value
    return out


def structural_schema(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    defs = raw.pop("$defs", {})
    return _resolve(raw, defs)


def trainingjob_crd() -> dict[str, Any]:
    spec_schema = structural_schema(TrainingJobSpec)
    status_schema = structural_schema(TrainingJobStatus)
    status_schema["x-kubernetes-preserve-unknown-fields"] = True  # room for kopf's bookkeeping
    plural = contracts.TRAININGJOB_PLURAL
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{contracts.GROUP}"},
        "spec": {
            "group": contracts.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": contracts.TRAININGJOB_KIND, "listKind": f"{contracts.TRAININGJOB_KIND}List",
                "plural": plural, "singular": "trainingjob",
                "shortNames": [contracts.TRAININGJOB_SHORT_NAME], "categories": ["stretto", "all"],
            },
            "versions": [{
                "name": contracts.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Workers", "type": "integer", "jsonPath": ".status.workers"},
                    {"name": "GPUs", "type": "integer", "jsonPath": ".status.allocation.gpus"},
                    {"name": "Progress", "type": "number", "jsonPath": ".status.progress.percent",
                     "description": "Percent of the work done"},
                    {"name": "Rho", "type": "number", "jsonPath": ".status.prediction.rho",
                     "description": "Predicted finish-time fairness (1 = fair)"},
                    {"name": "Model", "type": "string", "jsonPath": ".status.jobModelSummary.name",
                     "description": "Whose throughput curve the job model starts from: a built-in family, or "
                                    "'learned' from the job's own reports alone"},
                    {"name": "Uncertainty", "type": "number", "jsonPath": ".status.jobModelSummary.uncertainty",
                     "description": "Half-width of the job model's 90 % credible interval, percent of its rate"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "An elastic deep-learning training job scheduled by Stretto.",
                    "required": ["spec"],
                    "x-kubernetes-validations": list(JOB_NAME_RULES),
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        # Only name and generateName may be described; the root's rules limit the name.
                        "metadata": {"type": "object", "properties": {
                            "name": {"type": "string"}, "generateName": {"type": "string"}}},
                        "spec": spec_schema,
                        "status": status_schema,
                    },
                }},
            }],
        },
    }


def render() -> str:
    header = "# Generated from stretto/api/models.py by `python -m stretto.api.crd`; do not edit.\n"
    return header + yaml.safe_dump(trainingjob_crd(), sort_keys=False, width=110)


def main() -> int:
    for path in (CRD_PATH, CHART_CRD_PATH):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render())
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
