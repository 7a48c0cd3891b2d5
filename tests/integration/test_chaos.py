"""A short chaos run on every submission (the full one is bench/bench_chaos.py, `make chaos`).

Its own local control plane (3 kwok nodes x 8 GPUs), the extender and two operator replicas sharing
one Lease and one progress port, and the training emulator playing the small demo workload. Meanwhile
the leader is SIGKILLed three times, the extender once, kube-apiserver and etcd restarted once each,
and the extender is sent 300 fuzzed requests. Every job must Succeed, with no invariant broken.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stretto.devcluster.chaos import FaultPlan
from stretto.devcluster.chaos_run import ChaosSettings, run_chaos
from stretto.devcluster.cluster import ClusterState, DevCluster
from stretto.devcluster.demo_workload import SMALL_WORKLOAD, Compression


@pytest.fixture(scope="module")
def chaos_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevCluster, ClusterState]]:
    cluster = DevCluster(Path(tmp_path_factory.mktemp("stretto-chaos")))
    state = cluster.up(nodes=3, gpus_per_node=8, progress=lambda msg: print(f"[chaos] {msg}", file=sys.stderr))
    try:
        yield cluster, state
    finally:
        cluster.down(progress=lambda msg: print(f"[chaos] {msg}", file=sys.stderr))


def test_nothing_is_lost_when_the_leader_the_extender_and_the_control_plane_die(chaos_cluster):
    cluster, state = chaos_cluster
    settings = ChaosSettings(
        workload=SMALL_WORKLOAD, replicas=2, seed=11, fuzz_requests=300, timeout_s=400,
        plan=FaultPlan(operator_kills=3, extender_kills=1, apiserver_restarts=1, etcd_restarts=1),
        compression=Compression(time_scale=20.0, round_seconds=2.0))
    outcome = run_chaos(cluster, state, settings, progress=lambda msg: print(f"[chaos] {msg}", file=sys.stderr))
    print(f"\nchaos: {outcome.succeeded}/{outcome.jobs} Succeeded in {outcome.wall_s:.0f} wall s, faults "
          f"{outcome.fired}, {outcome.listings} listings checked; fuzz: {outcome.fuzz.line()}, "
          f"log {outcome.log_bytes_per_bad_request or 0:.0f} bytes per bad request")
    assert outcome.fired == {"operator": 3, "extender": 1, "kube-apiserver": 1, "etcd": 1}
    assert outcome.succeeded == outcome.jobs, outcome.phases
    assert outcome.violations == []
    assert outcome.listings >= 10
    assert outcome.fuzz.sent == 300 and outcome.fuzz.server_errors == []
    assert outcome.fuzz_unanswered_otherwise == []    # unanswered only while the chaos had it killed
    assert outcome.fuzz_disallowed == []
    assert outcome.log_bytes_per_bad_request is not None and outcome.log_bytes_per_bad_request < 1024
