"""Keeps `ClusterCache` fed from the API server: list, then watch, Nodes and Pods, each in a thread.

A watch that expires (410 Gone) or breaks is followed by a fresh list, which replaces the cache's
contents (`replace_nodes`, `replace_pods`) so nothing missed in between lingers. Pods that finish
leave the field selector's view and arrive as DELETED, which frees their devices. The same pod
stream keeps `PendingPods`, the API server's copy of every pod still waiting for Stretto's scheduler.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .cluster_cache import ClusterCache, node_capacity
from .demand import TERMINAL_PHASES, pod_booking
from .kube_api import KubeAPI, KubeAPIError
from .pending_pods import PendingPods

log = logging.getLogger(__name__)

NODES_PATH = "/api/v1/nodes"
PODS_PATH = "/api/v1/pods"
# Like kube-scheduler's pod informer: finished pods hold nothing.
POD_SELECTOR = ("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")
GONE = 410


class _Expired(Exception):
    pass


class CacheFeeder:
    def __init__(self, api: KubeAPI, cache: ClusterCache, *, pending: PendingPods | None = None,
                 retry_s: float = 1.0, watch_timeout_s: int = 300) -> None:
        self._api = api
        self._cache = cache
        self._pending = pending if pending is not None else PendingPods()
        self._retry_s = retry_s
        self._watch_timeout_s = watch_timeout_s
        self._stop = threading.Event()
        self._nodes_synced = threading.Event()
        self._pods_synced = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def synced(self) -> bool:
        return self._nodes_synced.is_set() and self._pods_synced.is_set()

    def wait_synced(self, timeout_s: float) -> bool:
        return self._nodes_synced.wait(timeout_s) and self._pods_synced.wait(timeout_s)

    def start(self) -> None:
        for name, loop in (("nodes", self._run_nodes), ("pods", self._run_pods)):
            thread = threading.Thread(target=loop, name=f"stretto-watch-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the loops to end; a watch blocked on the network ends at its timeout (daemon threads)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    # ---- loops ---------------------------------------------------------------------------------
    def _run_nodes(self) -> None:
        self._list_and_watch(NODES_PATH, (), self._replace_nodes, self._node_event, self._nodes_synced)

    def _run_pods(self) -> None:
        self._list_and_watch(
            PODS_PATH, (POD_SELECTOR,), self._replace_pods, self._pod_event, self._pods_synced,
        )

    def _list_and_watch(
        self, path: str, query: tuple[tuple[str, str], ...],
        replace: Callable[[list[dict[str, Any]], float], None],
        apply: Callable[[str, dict[str, Any]], None],
        synced: threading.Event,
    ) -> None:
        while not self._stop.is_set():
            try:
                listed_at = self._cache.now()  # before the list: later bookings survive the replace
                items, version = self._api.list_all(path, query=query)
                replace(items, listed_at)
                synced.set()
                log.info("listed %d objects from %s at resourceVersion %s", len(items), path, version)
                while not self._stop.is_set():
                    version = self._follow(self._api.watch(
                        path, resource_version=version, query=query, timeout_s=self._watch_timeout_s,
                    ), version, apply)
            except _Expired:
                log.info("watch on %s expired; listing again", path)
            except KubeAPIError as exc:
                if exc.status == GONE:
                    log.info("watch on %s expired; listing again", path)
                    continue
                log.warning("watch on %s failed (%s); listing again in %.0fs", path, exc, self._retry_s)
                self._stop.wait(self._retry_s)
            except Exception:
                log.exception("unexpected error feeding the cache from %s", path)
                self._stop.wait(self._retry_s)

    def _follow(self, events: Iterator[dict[str, Any]], version: str,
                apply: Callable[[str, dict[str, Any]], None]) -> str:
        """Apply events until the stream ends; return the last resourceVersion seen."""
        for event in events:
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == GONE:
                    raise _Expired()
                raise KubeAPIError(int(obj.get("code") or 0), str(obj.get("message")))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind != "BOOKMARK" and isinstance(kind, str):
                apply(kind, obj)
            if self._stop.is_set():
                break
        return version

    # ---- object -> cache -----------------------------------------------------------------------
    def _replace_nodes(self, items: list[dict[str, Any]], listed_at: float) -> None:
        self._cache.replace_nodes(c for c in (node_capacity(n) for n in items) if c is not None)

    def _node_event(self, kind: str, node: dict[str, Any]) -> None:
        if kind == "DELETED":
            name = (node.get("metadata") or {}).get("name")
            if isinstance(name, str):
                self._cache.remove_node(name)
            return
        capacity = node_capacity(node)
        if capacity is not None:
            self._cache.upsert_node(capacity)

    def _replace_pods(self, items: list[dict[str, Any]], listed_at: float) -> None:
        bookings = [pod_booking(item) for item in items]
        self._cache.replace_pods((b for b in bookings if b is not None), listed_at=listed_at)
        self._pending.replace(item for item, booking in zip(items, bookings, strict=True) if booking is None)

    def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid")
        if not isinstance(uid, str) or not uid:
            return
        phase = (pod.get("status") or {}).get("phase")
        if kind == "DELETED" or phase in TERMINAL_PHASES:
            self._cache.forget_pod(uid)
            self._pending.forget(uid)
            return
        booking = pod_booking(pod)
        if booking is None:
            self._cache.observe_unbound(uid)
            self._pending.observe(pod)
        else:
            self._cache.observe_booking(booking)
            self._pending.forget(uid)
