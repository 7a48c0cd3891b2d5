"""Start and stop the cluster and Stretto's processes for the integration tests."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stretto.devcluster import processes
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.processes import ProcessRecord


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
        env["STRETTO_RESYNC_SECONDS"] = "2"
        return env

    def start(self, name: str, args: list[str]) -> ProcessRecord:
        record = processes.start(name, [sys.executable, "-m", "stretto.cli", *args], self.log_dir, self._env())
        self.records[name] = record
        return record

    def start_stretto(self) -> None:
        if self.extender_port is not None:  # local plane: the scheduler calls this port
            self.start("extender", ["extender", "--host", "127.0.0.1", "--port", str(self.extender_port)])
            wait_for(lambda: _http_ok(self.extender_port, "/readyz"), 60, "the extender to be ready")
        self.start_operator()

    def start_operator(self) -> ProcessRecord:
        return self.start("operator", ["operator"])

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
