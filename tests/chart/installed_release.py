"""A Helm release of the chart on a plain local control plane, its components run as their ServiceAccounts.

kwok plays the chart's pods (they are admitted, scheduled and Running, but run nothing), so each
component also runs here as a local process, configured from what the release installed and
authenticated only by a TokenRequest token of the chart's ServiceAccount: kube-scheduler from the
KubeSchedulerConfiguration in the release's ConfigMap (plus the kubeconfig a pod gets in-cluster),
the extender as its sidecar, the operator with its Deployment's arguments and environment, and the
node daemon on mock NVML. A 403 in any of their logs is an RBAC gap.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stretto.devcluster import processes
from stretto.devcluster.binaries import Binaries
from stretto.devcluster.cluster import ClusterState, DevCluster
from stretto.devcluster.pki import Pki
from stretto.devcluster.processes import ProcessRecord
from tests.chart.chart_tools import NAMESPACE
from tests.integration.harness import wait_for

REPO = Path(__file__).resolve().parents[2]
FAKE_NVML = REPO / "gpu_interceptor" / "native" / "build" / "fake"
# An HTTP 403 or "forbidden"; not the 403 of a timestamp's milliseconds (",403").
REFUSALS = re.compile(r"forbidden|(?<![\d,.:])403(?!\d)", re.IGNORECASE)


def refusals(text: str) -> list[str]:
    return [line for line in text.splitlines() if REFUSALS.search(line)]


@dataclass
class Release:
    """The local processes standing in for the release's pods."""

    cluster: DevCluster
    state: ClusterState
    binaries: Binaries
    work_dir: Path
    records: dict[str, ProcessRecord] = field(default_factory=dict)

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state.kubeconfig

    # -- identities ------------------------------------------------------------------------------
    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig holding only a TokenRequest token of the ServiceAccount `namespace/name`."""
        token = self.cluster.rest(self.state).request(
            "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": 3600}})["status"]["token"]
        pki = Pki(Path(self.state.run_dir) / "pki")
        admin = yaml.safe_load(self.admin_kubeconfig.read_text())
        config = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": admin["clusters"][0]["cluster"]["server"],
                "certificate-authority": str(pki.serving_ca)}}],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": name, "context": {"cluster": "local", "user": name, "namespace": namespace}}],
            "current-context": name,
        }
        path = self.work_dir / f"{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    # -- processes -------------------------------------------------------------------------------
    def _environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """No admin credentials anywhere: no $KUBECONFIG, and a HOME without ~/.kube/config."""
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG" and not k.startswith("STRETTO_")}
        home = self.work_dir / "home"
        home.mkdir(exist_ok=True)
        env["HOME"] = str(home)
        env.update(extra or {})
        return env

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        if name in self.records:
            processes.stop(self.records[name])
        record = processes.start(name, argv, self.work_dir / "logs", self._environment(env))
        self.records[name] = record
        return record

    def stretto(self, name: str, args: list[str], env: dict[str, str] | None = None) -> ProcessRecord:
        return self.start(name, [sys.executable, "-m", "stretto.cli", *args], env)

    def alive(self, name: str) -> bool:
        return self.records[name].alive()

    def log(self, name: str) -> str:
        return Path(self.records[name].log).read_text(errors="replace")

    def refusals_by_component(self) -> dict[str, list[str]]:
        return {name: found for name in self.records if (found := refusals(self.log(name)))}

    def stop(self, name: str) -> None:
        processes.stop(self.records[name])

    def stop_all(self) -> None:
        for record in self.records.values():
            processes.stop(record)

    # -- the components, from what the release installed -------------------------------------------
    def start_kube_scheduler(self, scheduler_config_yaml: str) -> int:
        kubeconfig = self.service_account_kubeconfig(NAMESPACE, "stretto-scheduler")
        config = yaml.safe_load(scheduler_config_yaml)
        assert "clientConnection" not in config, "the chart's configuration now names its own connection"
        config["clientConnection"] = {"kubeconfig": str(kubeconfig)}  # what in-cluster config gives the pod
        path = self.work_dir / "kube-scheduler.yaml"
        path.write_text(yaml.safe_dump(config))
        port = processes.free_port()
        self.start("kube-scheduler", [
            str(self.binaries.kube_scheduler), f"--config={path}", "--bind-address=127.0.0.1",
            f"--secure-port={port}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--v=2"])
        return port

    def start_extender(self, port: int) -> None:
        kubeconfig = self.service_account_kubeconfig(NAMESPACE, "stretto-scheduler")
        self.stretto("extender", ["extender", "--kubeconfig", str(kubeconfig), "--host", "127.0.0.1",
                                  "--port", str(port)])
        wait_for(lambda: _http_ok(port, "/readyz"), 60, "the extender to be ready")

    def start_operator(self, deployment: dict[str, Any]) -> None:
        """The operator with its Deployment's arguments and environment; only its listeners move to
        loopback ports (the Deployment's pod would own its ports) and workers report to one of them."""
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        args = list(container["args"])
        liveness, progress = processes.free_port(), processes.free_port()
        args[args.index("--liveness") + 1] = f"http://127.0.0.1:{liveness}/healthz"
        args[args.index("--progress-port") + 1] = str(progress)
        env = {item["name"]: item["value"] for item in container["env"]}
        env["STRETTO_PROGRESS_URL"] = f"http://127.0.0.1:{progress}"
        kubeconfig = self.service_account_kubeconfig(NAMESPACE, "stretto-operator")
        self.stretto("operator", [*args, "--kubeconfig", str(kubeconfig), "--progress-host", "127.0.0.1"], env)
        wait_for(lambda: _http_ok(liveness, "/healthz"), 90, "the operator's liveness endpoint")

    def start_node_daemon(self, namespace: str, node: str, name: str = "node-daemon") -> None:
        if not (FAKE_NVML / "libnvidia-ml.so.1").is_file():
            raise FileNotFoundError(f"{FAKE_NVML}/libnvidia-ml.so.1 is missing: run `make native` first")
        gpus = self.work_dir / "fakegpu.conf"
        gpus.write_text("".join("gpu = NVIDIA A100-SXM4-80GB, 80Gi\n" for _ in range(8))
                        + f"timeline = {self.work_dir / 'timeline'}\n")
        kubeconfig = self.service_account_kubeconfig(namespace, "stretto-node-daemon")
        self.stretto(name, ["node-daemon", "--kubeconfig", str(kubeconfig), "--node", node,
                                     "--control-dir", str(self.work_dir / "control"), "--metrics-port", "0"],
                     {"STRETTO_FAKE_GPU_CONFIG": str(gpus), "LD_LIBRARY_PATH": str(FAKE_NVML)})


def _http_ok(port: int, path: str) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return bool(response.status == 200)
