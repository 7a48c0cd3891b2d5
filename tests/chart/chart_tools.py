"""Run the pinned helm and kubectl on the chart; render it into objects."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "stretto"
RELEASE = "stretto"
NAMESPACE = "stretto-system"


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubectl: Path

    def run(self, tool: str, *args: str, kubeconfig: Path | None = None, stdin: str | None = None,
            check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        argv = [str(getattr(self, tool)), *args]
        if kubeconfig is not None:
            argv.append(f"--kubeconfig={kubeconfig}")
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"`{' '.join(argv)}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def template(self, *set_values: str, namespace: str = NAMESPACE, check: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        args = ["template", RELEASE, str(CHART), "--namespace", namespace]
        for value in set_values:
            args += ["--set", value]
        return self.run("helm", *args, check=check)

    def render(self, *set_values: str, namespace: str = NAMESPACE) -> list[dict[str, Any]]:
        return [d for d in yaml.safe_load_all(self.template(*set_values, namespace=namespace).stdout) if d]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name} rendered"
    return matches[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])
