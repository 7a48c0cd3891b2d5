"""Builders and a recording binder for tests and benches (never used by the running extender).

`make_pod(...)` and `make_node(...)` return API-shaped JSON dicts; `RecordingBinder` stands in for
`KubePodBinder` in unit tests, recording every call and failing on demand.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stretto import contracts

from .binder import BindError


def make_node(
    name: str, *, gpus: int = 8, cpu: str = "96", memory: str = "768Gi", gpu_memory_mib: int | None = None,
) -> dict[str, Any]:
    labels = {"kubernetes.io/hostname": name}
    if gpu_memory_mib is not None:
        labels[contracts.GPU_MEMORY_LABEL] = str(gpu_memory_mib)
    allocatable = {"cpu": cpu, "memory": memory, "pods": "110", contracts.GPU_RESOURCE: str(gpus)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"capacity": dict(allocatable), "allocatable": allocatable},
    }


def make_pod(
    name: str, *, namespace: str = "default", uid: str | None = None, gpus: int = 0,
    gpu_share: int = 0, cpu: str | None = None, memory: str | None = None,
    annotations: Mapping[str, str] | None = None, node: str | None = None, phase: str = "Pending",
) -> dict[str, Any]:
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if gpus:
        limits[contracts.GPU_RESOURCE] = str(gpus)
    if gpu_share:
        limits[contracts.GPU_SHARE_RESOURCE] = str(gpu_share)
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    spec: dict[str, Any] = {
        "schedulerName": contracts.SCHEDULER_NAME,
        "containers": [{"name": "worker", "image": "busybox",
                        "resources": {"limits": limits, "requests": requests}}],
    }
    if node is not None:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()),
                     "annotations": dict(annotations or {})},
        "spec": spec,
        "status": {"phase": phase},
    }


def share_annotations(memory_bytes: int, min_util: int = 0, max_util: int = 100) -> dict[str, str]:
    return {
        contracts.ANNOTATION_GPU_MEMORY: str(memory_bytes),
        contracts.ANNOTATION_GPU_MIN_UTIL: str(min_util),
        contracts.ANNOTATION_GPU_MAX_UTIL: str(max_util),
    }


@dataclass
class RecordingBinder:
    """Records API writes. `pods` answers read_pod; the `fail_*` hooks raise BindError when set."""

    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    bound: list[tuple[str, str, str, str]] = field(default_factory=list)
    annotations: dict[str, dict[str, str]] = field(default_factory=dict)  # by uid, what each Binding carried
    reads: list[tuple[str, str]] = field(default_factory=list)
    fail_bind: BindError | None = None
    fail_read: BindError | None = None
    before_bind: Callable[[], None] | None = None  # e.g. a barrier, to line up concurrent binds
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, pod: dict[str, Any]) -> dict[str, Any]:
        meta = pod["metadata"]
        self.pods[(meta["namespace"], meta["name"])] = pod
        return pod

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self._lock:
            self.reads.append((namespace, name))
        if self.fail_read is not None:
            raise self.fail_read
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise BindError(f"pods {name!r} not found", definite=True) from None

    def bind_pod(self, namespace: str, name: str, uid: str, node: str, annotations: Mapping[str, str]) -> None:
        if self.before_bind is not None:
            self.before_bind()
        if self.fail_bind is not None:
            raise self.fail_bind
        with self._lock:
            self.bound.append((namespace, name, uid, node))
            self.annotations[uid] = dict(annotations)
