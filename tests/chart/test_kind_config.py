"""kind-config.yaml decodes strictly as kind's v1alpha4 Cluster, and tells a kind user how to get the image in."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.chart.chart_tools import CHART, REPO

KIND_CONFIG = REPO / "kind-config.yaml"


def decode(checker: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(checker), str(path)], capture_output=True, text=True, timeout=60)


def test_kind_config_decodes_strictly_as_a_v1alpha4_cluster(kind_config_check: Path):
    result = decode(kind_config_check, KIND_CONFIG)
    assert result.returncode == 0, result.stderr
    cluster = json.loads(result.stdout)
    assert [node["role"] for node in cluster["nodes"]] == ["control-plane", "worker", "worker"]
    assert all(node["labels"]["nvidia.com/gpu.product"] for node in cluster["nodes"][1:])


def test_the_checker_refuses_an_unknown_field(kind_config_check: Path, tmp_path: Path):
    typo = tmp_path / "typo.yaml"
    typo.write_text(KIND_CONFIG.read_text().replace("  labels:", "  lables:", 1))
    result = decode(kind_config_check, typo)
    assert result.returncode == 1
    assert "field lables not found" in result.stderr, result.stderr


def test_comments_say_how_to_build_and_load_the_image_the_chart_pulls():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    image = f"{values['image']['repository']}:{chart['appVersion']}"
    comments = KIND_CONFIG.read_text()
    assert f"docker build -t {image} ." in comments
    assert f"kind load docker-image {image} --name stretto" in comments
    assert "kind create cluster --config kind-config.yaml --name stretto" in comments
