"""CPU and memory that pods Stretto does not manage hold on each node.

A node daemon, the chart's own pods or anything else a platform runs beside the workers take part of
a node's allocatable CPU and memory; kube-scheduler counts them (NodeResourcesFit), so a round that
planned a worker into that room would leave it unschedulable. A pod holds its requests from binding
until it is gone or has finished, as kube-scheduler counts them: the larger of its containers' sum
(with restartable init containers, the sidecars) and its largest init container, plus its overhead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stretto.api.quantity import parse_bytes, parse_quantity

GIB = 2**30
FINISHED_PHASES = ("Succeeded", "Failed")


def _requests(container: Mapping[str, Any]) -> tuple[float, float]:
    requests = (container.get("resources") or {}).get("requests") or {}
    return float(parse_quantity(requests.get("cpu", 0))), parse_bytes(requests.get("memory", 0)) / GIB


def _sum(pairs: Iterable[tuple[float, float]]) -> tuple[float, float]:
    cpus = memory = 0.0
    for cpu, mem in pairs:
        cpus, memory = cpus + cpu, memory + mem
    return cpus, memory


def pod_requests(spec: Mapping[str, Any]) -> tuple[float, float]:
    """(CPUs, GiB of memory) that a pod's spec requests on its node."""
    inits = spec.get("initContainers") or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always"]
    running = _sum(_requests(c) for c in [*(spec.get("containers") or []), *sidecars])
    starting = [_requests(c) for c in inits if c.get("restartPolicy") != "Always"]
    extra = _requests({"resources": {"requests": spec.get("overhead") or {}}})
    cpus = max([running[0], *(c for c, _ in starting)]) + extra[0]
    memory = max([running[1], *(m for _, m in starting)]) + extra[1]
    return cpus, memory


def reservation(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """What the cache keeps of a pod Stretto does not manage: its node and requests, or None when it holds
    nothing (not bound yet, or finished)."""
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    if not node or status.get("phase") in FINISHED_PHASES:
        return None
    cpus, memory = pod_requests(spec)
    metadata = pod["metadata"]
    return {"metadata": {"namespace": metadata.get("namespace"), "name": metadata["name"],
                         "resourceVersion": metadata.get("resourceVersion")},
            "node": node, "cpus": cpus, "memory_gib": memory}


def reserved_by_node(reservations: Iterable[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """(CPUs, GiB) held on each node by the given reservations."""
    held: dict[str, tuple[float, float]] = {}
    for item in reservations:
        cpus, memory = held.get(item["node"], (0.0, 0.0))
        held[item["node"]] = (cpus + item["cpus"], memory + item["memory_gib"])
    return held
