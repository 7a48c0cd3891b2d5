"""The Helm chart's round configuration (values.yaml `operator.config`) is valid and matches the operator's defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from stretto.core.rounds import build_plugins
from stretto.operator.config import OperatorConfig

CHART = Path(__file__).resolve().parents[2] / "charts" / "stretto"


def test_the_charts_config_is_the_operators_default():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    config = OperatorConfig.model_validate(values["operator"]["config"])
    build_plugins(config.scheduler)
    assert config == OperatorConfig()


def test_the_config_map_template_renders_the_values_under_the_operators_key():
    template = (CHART / "templates" / "config.yaml").read_text()
    assert "name: stretto-config" in template and "config.yaml: |" in template
    assert "toYaml .Values.operator.config" in template
