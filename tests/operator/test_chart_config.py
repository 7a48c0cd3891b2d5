"""The Helm chart's round configuration (values.yaml `operator.config`) is valid and matches the operator's defaults."""

from __future__ import annotations

from pathlib import Path

import yaml

from stretto.core.rounds import RoundConfig, build_plugins
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


def test_the_readmes_config_block_names_the_default_round():
    readme = (CHART.parents[1] / "README.md").read_text()
    block = readme.split("# kubectl -n stretto-system create configmap stretto-config", 1)[1]
    block = block.split("\n", 1)[1].split("```", 1)[0]
    config = OperatorConfig.model_validate(yaml.safe_load(block))
    assert config.scheduler == RoundConfig() == OperatorConfig().scheduler
