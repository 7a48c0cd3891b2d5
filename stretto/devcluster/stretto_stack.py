"""Stretto on a dev cluster: the extender, the operator (configured through its ConfigMap) and the training emulator.

Each runs as a background component of the `DevCluster` (logged under its run directory and stopped
with `stretto dev-cluster down`). The operator's configuration is written where the operator reads it
every round, `stretto-system/stretto-config` key `config.yaml`.
"""

from __future__ import annotations

import math
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from stretto.core.rounds import RoundConfig
from stretto.devcluster.cluster import STRETTO_NAMESPACE, ClusterError, ClusterState, DevCluster
from stretto.devcluster.demo_workload import Compression
from stretto.devcluster.rest import ApiError, RestClient

CONFIG_NAME = "stretto-config"
LEADER_LEASE = "stretto-operator"
EMULATOR_START_SECONDS = 3.0


@dataclass(frozen=True)
class StackSettings:
    compression: Compression
    checkpoint_notice_seconds: float = 1.0  # wall seconds a shrinking worker gets to checkpoint
    emulator_interval: float = 0.25  # wall seconds between the emulator's ticks
    round_config: RoundConfig = field(default_factory=RoundConfig)  # the operator's scheduler: block

    def operator_config(self) -> dict[str, Any]:
        scheduler = self.round_config.model_dump(mode="json")
        return {"roundSeconds": self.compression.round_seconds,
                "checkpointNoticeSeconds": self.checkpoint_notice_seconds, "scheduler": scheduler}


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ClusterError(f"{url} did not answer within {timeout:.0f}s")


def write_operator_config(rest: RestClient, config: dict[str, Any]) -> None:
    path = f"/api/v1/namespaces/{STRETTO_NAMESPACE}/configmaps"
    body = {"metadata": {"name": CONFIG_NAME}, "data": {"config.yaml": yaml.safe_dump(config)}}
    rest.create("/api/v1/namespaces", {"metadata": {"name": STRETTO_NAMESPACE}})
    try:
        rest.request("POST", path, body)
    except ApiError as error:
        if error.status != 409:
            raise
        rest.request("PUT", f"{path}/{CONFIG_NAME}", body)


def start_extender(cluster: DevCluster, state: ClusterState) -> None:
    cluster.start_component("extender", ["extender", "--host", "127.0.0.1", "--port", str(state.extender_port)])
    wait_http(f"http://127.0.0.1:{state.extender_port}/readyz", 60)


def operator_names(replicas: int) -> list[str]:
    return ["operator"] if replicas == 1 else [f"operator-{i}" for i in range(replicas)]


def stray_operators(components: Iterable[str], replicas: int) -> list[str]:
    """The operators of another replica count (a run with one operator before a run with two): left
    running, each would be a second leader, and hold the progress port the new replicas share."""
    wanted = set(operator_names(replicas))
    return sorted(n for n in components if (n == "operator" or n.startswith("operator-")) and n not in wanted)


def start_operator(cluster: DevCluster, state: ClusterState, settings: StackSettings, replicas: int = 1) -> str:
    """Start (or restart) the operator on the cluster's one progress address; returns its URL.

    More than one replica share the round loop through the Lease `LEADER_LEASE` (renewed every round,
    so it lapses after two rounds without one) and the progress port, as pods share a Service."""
    if not state.progress_port:
        raise ClusterError(f"{cluster.state_file} predates the fixed progress port: "
                           "`stretto dev-cluster down`, then start again")
    url = state.progress_url
    args = ["operator", "--progress-host", "127.0.0.1", "--progress-port", str(state.progress_port),
            "--progress-url", url]
    if replicas > 1:
        lease = max(2, math.ceil(2 * settings.compression.round_seconds))
        args += ["--leader-election", LEADER_LEASE, "--lease-seconds", str(lease)]
    for other in stray_operators((cluster.load_state() or state).processes, replicas):
        cluster.stop_component(other)
    for name in operator_names(replicas):
        cluster.start_component(name, args,
                                env={"STRETTO_ROUND_SECONDS": str(settings.compression.round_seconds),
                                     "STRETTO_TIME_SCALE": str(settings.compression.time_scale),
                                     "STRETTO_CONFIG": f"{STRETTO_NAMESPACE}/{CONFIG_NAME}"})
    return url


def start_emulator(cluster: DevCluster, settings: StackSettings, namespaces: list[str]) -> None:
    args = ["emulate-training", "--run-dir", str(cluster.run_dir),
            "--time-scale", str(settings.compression.time_scale), "--interval", str(settings.emulator_interval)]
    for namespace in namespaces:
        args += ["--namespace", namespace]
    cluster.start_component("emulator", args)


def start_all(cluster: DevCluster, state: ClusterState, settings: StackSettings, namespaces: list[str],
              progress: Any = print, replicas: int = 1) -> str:
    """Extender, operator configuration, operator (`replicas` of it) and emulator; returns the progress URL."""
    start_extender(cluster, state)
    progress(f"Stretto extender ready on 127.0.0.1:{state.extender_port}")
    write_operator_config(cluster.rest(state), settings.operator_config())
    url = start_operator(cluster, state, settings, replicas)
    progress(f"Stretto operator started (rounds every {settings.compression.round_seconds:g} s, "
             f"checkpoint notice {settings.checkpoint_notice_seconds:g} s, progress on {url})")
    wait_http(f"{url}/healthz", 60)  # the operator's start-up is done and its round loop begins
    start_emulator(cluster, settings, namespaces)
    time.sleep(EMULATOR_START_SECONDS)  # its interpreter starting: jobs applied before would lose time unplayed
    progress(f"training emulator started (1 wall s = {settings.compression.time_scale:g} training s)")
    return url
