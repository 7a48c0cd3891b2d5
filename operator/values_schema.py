"""The Helm chart's values.schema.json, generated so that it cannot drift from the code.

`operator.config` is the operator's own configuration model (`OperatorConfig`), with each plugin
name an enum of the names the registries hold; the rest mirrors values.yaml, every object closed
(`additionalProperties: false`) so that a misspelt key is refused at `helm install`, not ignored.
`python -m stretto.operator.values_schema` rewrites the checked-in file; a test fails on drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from stretto.core.registries import builtin_packers, builtin_policies, builtin_predictors
from stretto.operator.config import OperatorConfig

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "charts" / "stretto" / "values.schema.json"

Schema = dict[str, Any]

_PORT: Schema = {"type": "integer", "minimum": 1, "maximum": 65535}
_QUANTITY: Schema = {"anyOf": [
    {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"},
    {"type": "number", "exclusiveMinimum": 0},
]}
_NAMESPACE_OR_EMPTY: Schema = {"type": "string", "pattern": "^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)?$"}


def _closed(properties: dict[str, Schema], *, description: str | None = None) -> Schema:
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties,
                      "required": sorted(properties)}
    if description:
        schema["description"] = description
    return schema


def _resources() -> Schema:
    amounts: Schema = {"type": "object", "propertyNames": {"pattern": "^[a-z0-9.\\-/]+$"},
                       "additionalProperties": _QUANTITY}
    return {"type": "object", "additionalProperties": False,
            "properties": {"requests": amounts, "limits": amounts}}


def _plugin_spec(kind: str, names: list[str]) -> Schema:
    return {
        "type": "object", "additionalProperties": False, "required": ["name"],
        "description": f"a {kind} by name, with its arguments",
        "properties": {"name": {"type": "string", "enum": names, "description": f"one of: {', '.join(names)}"},
                       "args": {"type": "object", "additionalProperties": True}},
    }


def operator_config_schema() -> tuple[Schema, dict[str, Schema]]:
    """The `operator.config` schema and the definitions it refers to (kept at the document's root)."""
    schema = OperatorConfig.model_json_schema(mode="validation", ref_template="#/$defs/{model}")
    definitions: dict[str, Schema] = schema.pop("$defs")
    definitions.pop("PluginSpec")
    definitions["PredictorSpec"] = _plugin_spec("predictor", builtin_predictors().names())
    definitions["PolicySpec"] = _plugin_spec("policy", builtin_policies().names())
    definitions["PackerSpec"] = _plugin_spec("packer", builtin_packers().names())
    round_config = definitions["RoundConfig"]["properties"]
    for key, definition in (("predictor", "PredictorSpec"), ("policy", "PolicySpec"), ("packer", "PackerSpec")):
        round_config[key] = {"$ref": f"#/$defs/{definition}"}
    return schema, definitions


def values_schema() -> Schema:
    config, definitions = operator_config_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Values of the Stretto Helm chart",
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "operator", "scheduler", "nodeDaemon", "networkPolicy", "cleanup"],
        "properties": {
            # Helm adds `global` to every chart's values before it validates them.
            "global": {"type": "object"},
            "image": _closed({
                "repository": {"type": "string", "minLength": 1},
                "tag": {"type": "string"},
                "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
            }),
            "operator": _closed({
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "livenessPort": _PORT,
                "progressPort": _PORT,
                "config": config,
                "resources": _resources(),
            }),
            "scheduler": _closed({
                "kubeSchedulerImage": {"type": "string", "minLength": 1},
                "extenderPort": _PORT,
                "resources": _resources(),
            }),
            "nodeDaemon": _closed({
                "enabled": {"type": "boolean"},
                "namespace": _NAMESPACE_OR_EMPTY,
                "metricsPort": _PORT,
                "mockNvml": {"type": "boolean"},
                "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
                "resources": _resources(),
            }),
            "networkPolicy": _closed({
                "enabled": {"type": "boolean"},
                "metricsFrom": {"type": "array", "items": {"type": "object"}},
            }),
            "cleanup": _closed({
                "deleteTrainingJobsOnUninstall": {"type": "boolean"},
                "timeoutSeconds": {"type": "integer", "minimum": 10, "maximum": 3600},
            }),
        },
        "$defs": definitions,
    }


def render() -> str:
    return json.dumps(values_schema(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    SCHEMA_PATH.write_text(render())
    print(f"wrote {SCHEMA_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
