"""What the operator knows of the cluster, kept by watches: TrainingJobs, their workers and Services, nodes,
and the CPU and memory other pods hold on those nodes.

Informer semantics, as kube-scheduler's cache and Kueue's: `prime` lists each kind once (at start-up
and when this replica starts leading); after that only watch events (kopf's streams) and the
answers to the operator's own writes change it, so a round reads it without a single API call.
Bodies are plain dicts, replaced and never mutated. An event older than what is held (by
resourceVersion) is ignored, and a deleted object leaves a tombstone, so a list that began before a
deletion cannot bring the object back. A change from the cluster marks the job it belongs to dirty:
the round loop re-applies dirty jobs between rounds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from stretto import contracts
from stretto.operator.node_reservations import reservation, reserved_by_node
from stretto.operator.snapshot_builder import job_key

Body = dict[str, Any]


class Kind(StrEnum):
    JOB = "trainingjobs"
    POD = "pods"
    SERVICE = "services"
    NODE = "nodes"
    OTHER_POD = "otherpods"  # pods Stretto does not manage, kept as their node reservations only


def _object_key(body: Body) -> tuple[str, str]:
    metadata = body["metadata"]
    return metadata.get("namespace") or "", metadata["name"]


def _version(body: Body) -> int | None:
    raw = body.get("metadata", {}).get("resourceVersion")
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def _older_or_same(new: int | None, held: int | None) -> bool:
    return new is not None and held is not None and new <= held


def owning_job(kind: Kind, body: Body) -> str | None:
    """The job a body belongs to: itself for a TrainingJob, its `stretto.io/job` label for a worker or Service."""
    metadata = body.get("metadata", {})
    if kind is Kind.JOB:
        return job_key(metadata.get("namespace", ""), metadata["name"])
    if kind in (Kind.NODE, Kind.OTHER_POD):
        return None
    name = (metadata.get("labels") or {}).get(contracts.LABEL_JOB)
    return job_key(metadata.get("namespace", ""), name) if name else None


def owned_by(body: Body, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in body.get("metadata", {}).get("ownerReferences") or [])


class ClusterCache:
    """TrainingJobs, worker pods, their Services and nodes, by (namespace, name); thread-safe."""

    def __init__(self, on_dirty: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Kind, dict[tuple[str, str], Body]] = {kind: {} for kind in Kind}
        self._tombstones: dict[Kind, dict[tuple[str, str], int]] = {kind: {} for kind in Kind}
        self._pods_by_job: dict[str, set[tuple[str, str]]] = {}
        self._dirty: set[str] = set()
        self.on_dirty = on_dirty  # called (from any thread) when a job becomes dirty
        self.primed = False
        self.relisted = False  # a watch listed again since the last priming: prime again

    # -- feeding -------------------------------------------------------------------------------
    def observe(self, kind: Kind, event_type: str | None, body: Body) -> None:
        """A watch event: ADDED, MODIFIED or DELETED, or None for an object of a listing (kopf lists again
        when a watch's resourceVersion is gone, e.g. after etcd restarts). Marks the job it belongs to
        dirty when it changes anything. A listing after the cache was primed flags it `relisted`: what
        was deleted while nobody watched shows up only in a list of its own (`replace_all`)."""
        if event_type is None and self.primed:
            self.relisted = True
        changed = self.forget(kind, body) if event_type == "DELETED" else self.store(kind, body)
        job = owning_job(kind, body) if changed else None
        if job is not None:
            self.mark_dirty(job)

    def observe_other_pod(self, event_type: str | None, body: Body) -> None:
        """A watch event of a pod Stretto does not manage: only what it holds on its node is kept."""
        if event_type is None and self.primed:
            self.relisted = True
        kept = reservation(body)
        if event_type == "DELETED" or kept is None:
            self.forget(Kind.OTHER_POD, body)
        else:
            self.store(Kind.OTHER_POD, kept)

    def store(self, kind: Kind, body: Body) -> bool:
        """Hold `body` unless what is held (or its tombstone) is as new; True when it changed the cache."""
        key, version = _object_key(body), _version(body)
        with self._lock:
            held = self._objects[kind].get(key)
            if _older_or_same(version, _version(held) if held else self._tombstones[kind].get(key)):
                return False
            self._tombstones[kind].pop(key, None)
            self._objects[kind][key] = body
            if kind is Kind.POD:
                self._index_pod(key, held, body)
            return True

    def forget(self, kind: Kind, body: Body) -> bool:
        key, version = _object_key(body), _version(body)
        with self._lock:
            held = self._objects[kind].get(key)
            held_version = _version(held) if held is not None else None
            if version is not None and held_version is not None and version < held_version:
                return False  # a deletion older than what is held: the object was re-created since
            if version is not None:
                self._tombstones[kind][key] = version
            if held is None:
                return False
            del self._objects[kind][key]
            if kind is Kind.POD:
                self._index_pod(key, held, None)
            return True

    def replace_all(self, kind: Kind, bodies: Iterable[Body], listed_version: int | None) -> None:
        """The answer to a list at `listed_version`: what it lacks and is no newer is gone."""
        listed = {_object_key(b): b for b in bodies}
        for body in listed.values():
            self.store(kind, body)
        with self._lock:
            stale = [(key, held) for key, held in self._objects[kind].items() if key not in listed
                     and not (listed_version is not None and (_version(held) or 0) > listed_version)]
        for _, held in stale:
            self.forget(kind, held)

    def _index_pod(self, key: tuple[str, str], old: Body | None, new: Body | None) -> None:
        for body, add in ((old, False), (new, True)):
            job = owning_job(Kind.POD, body) if body is not None else None
            if job is None:
                continue
            members = self._pods_by_job.setdefault(job, set())
            if add:
                members.add(key)
            else:
                members.discard(key)
                if not members:
                    del self._pods_by_job[job]

    # -- dirty jobs -----------------------------------------------------------------------------
    def mark_dirty(self, job: str) -> None:
        with self._lock:
            self._dirty.add(job)
        if self.on_dirty is not None:
            self.on_dirty()

    def take_dirty(self) -> set[str]:
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        return dirty

    # -- reading --------------------------------------------------------------------------------
    def jobs(self) -> list[Body]:
        with self._lock:
            return list(self._objects[Kind.JOB].values())

    def job(self, key: str) -> Body | None:
        namespace, _, name = key.partition("/")
        with self._lock:
            return self._objects[Kind.JOB].get((namespace, name))

    def nodes(self) -> list[Body]:
        with self._lock:
            return list(self._objects[Kind.NODE].values())

    def workers(self) -> list[Body]:
        """Every worker pod held, of every job."""
        with self._lock:
            return [p for p in self._objects[Kind.POD].values()
                    if (p["metadata"].get("labels") or {}).get(contracts.LABEL_ROLE) == contracts.ROLE_WORKER]

    def workers_of(self, key: str, uid: str) -> list[Body]:
        """The job's worker pods that belong to this uid (a deleted namesake's are not its own)."""
        with self._lock:
            pods = [self._objects[Kind.POD][k] for k in self._pods_by_job.get(key, ())]
        return [p for p in pods if owned_by(p, uid)
                and (p["metadata"].get("labels") or {}).get(contracts.LABEL_ROLE) == contracts.ROLE_WORKER]

    def reserved_by_node(self) -> dict[str, tuple[float, float]]:
        """(CPUs, GiB of memory) that pods Stretto does not manage hold on each node."""
        with self._lock:
            held = list(self._objects[Kind.OTHER_POD].values())
        return reserved_by_node(held)

    def service(self, namespace: str, name: str) -> Body | None:
        with self._lock:
            return self._objects[Kind.SERVICE].get((namespace, name))

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {kind.value: len(objects) for kind, objects in self._objects.items()}
