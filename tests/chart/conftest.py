"""The chart tests' tools: helm and kind-config-check (built from pinned Go modules on first use) and kubectl."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stretto.devcluster.binaries import build_binaries
from stretto.devcluster.go_tools import HELM, KIND_CONFIG_CHECK, build_tool
from tests.chart.chart_tools import Tools


def _progress(message: str) -> None:
    print(f"[chart tools] {message}", file=sys.stderr)


@pytest.fixture(scope="session")
def tools() -> Tools:
    return Tools(helm=build_tool(HELM, _progress), kubectl=build_binaries(_progress).kubectl)


@pytest.fixture(scope="session")
def kind_config_check() -> Path:
    return build_tool(KIND_CONFIG_CHECK, _progress)
