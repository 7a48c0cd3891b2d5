"""Other pods' CPU and memory on a node, as kube-scheduler counts them, and the round's node room without them."""

from __future__ import annotations

from typing import Any

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.operator.cluster_cache import ClusterCache
from stretto.operator.node_reservations import pod_requests
from stretto.operator.snapshot_builder import build_snapshot


def container(cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    return {"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


def other_pod(name: str, version: int, node: str | None = "n1", phase: str = "Running",
              cpu: str = "500m", memory: str = "1Gi") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "kube-system", "resourceVersion": str(version)},
            "spec": {"nodeName": node, "containers": [container(cpu, memory)]}, "status": {"phase": phase}}


def test_requests_are_the_containers_sum_or_the_largest_init_container_plus_overhead():
    spec = {"containers": [container("250m", "1Gi"), container("250m", "1Gi")],
            "initContainers": [container("2", "512Mi"), container("100m", "256Mi", restartPolicy="Always")],
            "overhead": {"cpu": "100m", "memory": "128Mi"}}
    cpus, memory = pod_requests(spec)
    assert abs(cpus - (2 + 0.1)) < 1e-9              # the init container's 2 CPUs beat 0.6 running
    assert abs(memory - (2.25 + 0.125)) < 1e-9       # 2 GiB + the 256 MiB sidecar beat the init's 512 MiB


def test_a_pod_holds_its_node_room_from_binding_until_it_finishes_or_goes():
    cache = ClusterCache()
    cache.observe_other_pod("ADDED", other_pod("daemon", 3, node=None))
    assert cache.reserved_by_node() == {}                       # not bound: holds nothing yet
    cache.observe_other_pod("MODIFIED", other_pod("daemon", 4))
    cache.observe_other_pod("ADDED", other_pod("exporter", 5, cpu="1", memory="2Gi"))
    assert cache.reserved_by_node() == {"n1": (1.5, 3.0)}
    assert cache.take_dirty() == set()                          # no job to re-apply for another pod
    cache.observe_other_pod("MODIFIED", other_pod("exporter", 6, phase="Succeeded"))
    cache.observe_other_pod("MODIFIED", other_pod("exporter", 5, cpu="1", memory="2Gi"))  # late, older
    assert cache.reserved_by_node() == {"n1": (0.5, 1.0)}
    cache.observe_other_pod("DELETED", other_pod("daemon", 7))
    assert cache.reserved_by_node() == {}


def node(name: str, gpus: int = 8, cpu: str = "32", memory: str = "256Gi") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {},
            "status": {"allocatable": {contracts.GPU_RESOURCE: str(gpus), "cpu": cpu, "memory": memory},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def test_the_round_plans_only_the_room_other_pods_leave():
    snapshot = build_snapshot(now_s=0.0, round_index=0, round_seconds=60.0, jobs=[],
                              nodes=[node("n1"), node("n2")], pods=[], book=load_builtin_profiles(),
                              reserved={"n1": (0.05, 0.0625)})
    by_name = {n.name: n for n in snapshot.nodes}
    assert abs(by_name["n1"].cpus - 31.95) < 1e-9 and abs(by_name["n1"].memory_gib - 255.9375) < 1e-9
    assert by_name["n2"].cpus == 32.0 and by_name["n2"].memory_gib == 256.0
