"""Start and stop the cluster and Stretto's processes for the integration tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stretto.devcluster import processes
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.processes import ProcessRecord

CONFIG_NAMESPACE = "stretto-system"
CONFIG_NAME = "stretto-config"
# Compressed time for tests: rounds every 2 s, a shrinking worker gets 3 s to checkpoint.
TEST_OPERATOR_CONFIG = {
    "roundSeconds": 2,
    "checkpointNoticeSeconds": 3,
    "scheduler": {"predictor": {"name": "bayesian-regime"}, "policy": {"name": "elastic"},
                  "packer": {"name": "proportional"}},
}


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the API may be briefly unavailable under load; keep polling
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}"
                         + (f" (last error: {last_error})" if last_error else ""))


@dataclass
class Harness:
    kubeconfig: Path
    log_dir: Path
    cluster: DevCluster | None = None
    extender_port: int | None = None
    records: dict[str, ProcessRecord] = field(default_factory=dict)
    progress_port: int | None = None

    @classmethod
    def local(cls, run_dir: Path, nodes: int, gpus_per_node: int) -> Harness:
        cluster = DevCluster(run_dir)
        state = cluster.up(nodes=nodes, gpus_per_node=gpus_per_node,
                           progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
        return cls(kubeconfig=state.kubeconfig, log_dir=run_dir / "logs", cluster=cluster,
                   extender_port=state.extender_port)

    @classmethod
    def external(cls, kubeconfig: Path, log_dir: Path) -> Harness:
        if not kubeconfig.is_file():
            raise FileNotFoundError(f"kubeconfig {kubeconfig} does not exist")
        return cls(kubeconfig=kubeconfig, log_dir=log_dir)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["STRETTO_CONFIG"] = f"{CONFIG_NAMESPACE}/{CONFIG_NAME}"
        return env

    def start(self, name: str, args: list[str]) -> ProcessRecord:
        record = processes.start(name, [sys.executable, "-m", "stretto.cli", *args], self.log_dir, self._env())
        self.records[name] = record
        return record

    def configure_operator(self, config: dict[str, Any]) -> None:
        """Write the operator's ConfigMap (it re-reads it every round)."""
        from kubernetes import client
        from kubernetes import config as kube_config

        core = client.CoreV1Api(kube_config.new_client_from_config(str(self.kubeconfig)))
        if not [n for n in core.list_namespace().items if n.metadata.name == CONFIG_NAMESPACE]:
            core.create_namespace({"metadata": {"name": CONFIG_NAMESPACE}})
        body = {"metadata": {"name": CONFIG_NAME}, "data": {"config.yaml": yaml.safe_dump(config)}}
        try:
            core.create_namespaced_config_map(CONFIG_NAMESPACE, body)
        except client.exceptions.ApiException as error:
            if error.status != 409:
                raise
            core.replace_namespaced_config_map(CONFIG_NAME, CONFIG_NAMESPACE, body)

    def start_stretto(self) -> None:
        self.configure_operator(TEST_OPERATOR_CONFIG)
        if self.extender_port is not None:  # local plane: the scheduler calls this port
            self.start("extender", ["extender", "--host", "127.0.0.1", "--port", str(self.extender_port)])
            wait_for(lambda: _http_ok(self.extender_port, "/readyz"), 60, "the extender to be ready")
        self.start_operator()

    def start_operator(self) -> ProcessRecord:
        if self.progress_port is None:  # kept across restarts: running workers keep their URL
            self.progress_port = processes.free_port()
        return self.start("operator", ["operator", "--progress-host", "127.0.0.1", "--progress-port",
                                       str(self.progress_port), "--progress-url", self.progress_url])

    def start_emulator(self, *, time_scale: float, namespaces: list[str], interval: float = 0.25,
                       truth: Path | None = None) -> ProcessRecord:
        """`stretto emulate-training` on the local dev cluster: plays the Running workers of `namespaces`
        (with `truth`, the hidden truth file only the emulator reads)."""
        if self.cluster is None:
            raise RuntimeError("the training emulator needs the local dev cluster (it reads its credentials)")
        args = ["emulate-training", "--run-dir", str(self.cluster.run_dir), "--time-scale", str(time_scale),
                "--interval", str(interval)]
        if truth is not None:
            args += ["--truth", str(truth)]
        for namespace in namespaces:
            args += ["--namespace", namespace]
        return self.start("emulator", args)

    @property
    def progress_url(self) -> str:
        return f"http://127.0.0.1:{self.progress_port}"

    def kill(self, name: str) -> None:
        processes.kill(self.records[name])

    def log(self, name: str) -> str:
        return Path(self.records[name].log).read_text(errors="replace")

    def close(self) -> None:
        for record in self.records.values():
            processes.stop(record)
        if self.cluster is not None:
            self.cluster.down(progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))


def _http_ok(port: int | None, path: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return bool(response.status == 200)
