"""The pending pods of Stretto's scheduler as the API server shows them, fed by the pod watch.

A bind decides from this copy (or, when the watch has not shown the pod yet, from a fresh read):
never from the pod a caller POSTed to `/filter`, which anyone who reaches the extender can forge.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from stretto import contracts

from .demand import MalformedPod, pod_demand
from .model import PodDemand


def _ours_and_unbound(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec")
    return (isinstance(spec, Mapping) and spec.get("schedulerName") == contracts.SCHEDULER_NAME
            and not spec.get("nodeName"))


class PendingPods:
    """Thread-safe: the watch thread writes, the bind threads read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, PodDemand] = {}

    def observe(self, pod: Mapping[str, Any]) -> None:
        """An unbound pod from the API (watch event or list item)."""
        demand = self._demand(pod)
        uid = (pod.get("metadata") or {}).get("uid")
        with self._lock:
            if demand is not None:
                self._by_uid[demand.uid] = demand
            elif isinstance(uid, str):
                self._by_uid.pop(uid, None)

    def forget(self, uid: str) -> None:
        """The pod is bound, finished or deleted."""
        with self._lock:
            self._by_uid.pop(uid, None)

    def replace(self, unbound: Iterable[Mapping[str, Any]]) -> None:
        """A full list: what it does not show is no longer pending."""
        fresh = {d.uid: d for d in map(self._demand, unbound) if d is not None}
        with self._lock:
            self._by_uid = fresh

    def get(self, uid: str) -> PodDemand | None:
        with self._lock:
            return self._by_uid.get(uid)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_uid)

    @staticmethod
    def _demand(pod: Mapping[str, Any]) -> PodDemand | None:
        if not _ours_and_unbound(pod):
            return None
        try:
            return pod_demand(pod)
        except MalformedPod:
            return None
