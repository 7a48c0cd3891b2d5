"""Desired versus observed: which worker pods to create and which to remove.

Workers are indexed 0..n-1 with deterministic names, so a plan computed twice (say, by an operator
restarted after SIGKILL half-way through) creates nothing twice: a create that finds the pod already
there is a no-op, and indices above the desired count are removed highest first, keeping worker 0,
which hosts the rendezvous.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stretto import contracts


@dataclass(frozen=True)
class WorkerPlan:
    create: tuple[int, ...]
    delete: tuple[str, ...]      # pod names, highest index first
    replace: tuple[str, ...]     # failed or evicted pods to delete and create anew


def worker_index(pod: dict[str, Any]) -> int | None:
    raw = (pod.get("metadata", {}).get("labels") or {}).get(contracts.LABEL_WORKER_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _gone(pod: dict[str, Any]) -> bool:
    return pod.get("metadata", {}).get("deletionTimestamp") is not None


def plan_workers(desired: int, pods: list[dict[str, Any]]) -> WorkerPlan:
    """What to do so that exactly workers 0..desired-1 exist (pods being deleted count as absent)."""
    live = {}
    for pod in pods:
        index = worker_index(pod)
        if index is not None and not _gone(pod):
            live[index] = pod
    create = tuple(i for i in range(desired) if i not in live)
    delete = tuple(live[i]["metadata"]["name"] for i in sorted(live, reverse=True) if i >= desired)
    replace = tuple(
        live[i]["metadata"]["name"] for i in sorted(live)
        if i < desired and live[i].get("status", {}).get("reason") == "Evicted"
    )
    return WorkerPlan(create=create, delete=delete, replace=replace)


def planned_nodes(desired: int, pods: list[dict[str, Any]], plan_nodes: Sequence[str]) -> dict[int, str]:
    """The round's node for each worker index below `desired` that is not bound to a node yet.

    The packer lists one node per worker, running workers first (they never move). Workers already
    bound use up their node's entries; what is left goes to the unbound indices in ascending order.
    """
    live = {i: pod for pod in pods if (i := worker_index(pod)) is not None and not _gone(pod)}
    bound = Counter(
        node for i, pod in live.items() if i < desired and (node := (pod.get("spec") or {}).get("nodeName"))
    )
    spare: list[str] = []
    for node in plan_nodes:
        if bound[node] > 0:
            bound[node] -= 1
        else:
            spare.append(node)
    unbound = [i for i in range(desired) if not ((live.get(i) or {}).get("spec") or {}).get("nodeName")]
    return dict(zip(unbound, spare, strict=False))
