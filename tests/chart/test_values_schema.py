"""values.schema.json is generated from the code (`python -m stretto.operator.values_schema`) and checked in."""

from __future__ import annotations

import json

from stretto.core.registries import builtin_packers, builtin_policies, builtin_predictors
from stretto.operator.values_schema import SCHEMA_PATH, render


def test_the_checked_in_values_schema_is_the_generated_one():
    assert SCHEMA_PATH.read_text() == render(), (
        "charts/stretto/values.schema.json is stale: run `python -m stretto.operator.values_schema`")


def test_plugin_names_in_the_schema_are_the_registries():
    definitions = json.loads(SCHEMA_PATH.read_text())["$defs"]
    for definition, registry in (("PredictorSpec", builtin_predictors()), ("PolicySpec", builtin_policies()),
                                 ("PackerSpec", builtin_packers())):
        assert definitions[definition]["properties"]["name"]["enum"] == registry.names()
