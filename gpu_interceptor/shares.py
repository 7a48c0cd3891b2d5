"""Which containers on this node share GPUs, and with what limits.

Input side of the daemon. ``shares_from_pod`` turns one pod (Kubernetes JSON, as the watch
delivers it after ``sanitize_for_serialization``) into the ``ContainerShare`` records the daemon
manages, from the annotations the extender writes at bind time (stretto.contracts).
``shares_from_file`` reads the same records from a JSON/YAML file, for nodes run without
Kubernetes and for tests. Pure functions, no Kubernetes client.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stretto import contracts

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class ContainerShare:
    """One container's share of the GPUs it was bound to."""

    pod_uid: str
    container: str
    gpu_ids: tuple[int, ...]
    memory_bytes: int | None  # per-device cap; None: no memory cap
    min_pct: float
    max_pct: float
    namespace: str = ""
    pod: str = ""
    container_id: str = ""  # runtime id without the "containerd://" prefix, for pid mapping
    labels: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.pod_uid}/{self.container}"


def _parse_percent(value: str | None, default: float, name: str) -> float:
    if value is None or value.strip() == "":
        return default
    pct = float(value)
    if not 0 <= pct <= 100:
        raise ValueError(f"{name} must be within 0..100, got {value!r}")
    return pct


def _parse_memory(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip()
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "K": 10**3, "M": 10**6, "G": 10**9,
             "T": 10**12}
    for suffix, mult in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * mult)
    return int(text)


def _gpu_containers(spec: Mapping[str, Any]) -> list[str]:
    containers = spec.get("containers") or []
    wanted = []
    for c in containers:
        limits = ((c.get("resources") or {}).get("limits")) or {}
        if contracts.GPU_SHARE_RESOURCE in limits or contracts.GPU_RESOURCE in limits:
            wanted.append(c["name"])
    if not wanted and containers:
        wanted.append(containers[0]["name"])  # the worker container comes first in Stretto's pods
    return wanted


def shares_from_pod(pod: Mapping[str, Any]) -> list[ContainerShare]:
    """The shares of a bound, running-or-pending pod; [] if it shares no GPU.

    A pod shares a GPU when the extender wrote ``stretto.io/gpu-ids`` and at least one of the
    share annotations (memory, min or max utilization); whole-GPU pods get no control file.
    The containers are those whose limits name ``stretto.io/gpu-share`` or ``nvidia.com/gpu``.
    Raises ValueError on malformed annotations.
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in TERMINAL_PHASES:
        return []
    ann = meta.get("annotations") or {}
    ids = contracts.parse_gpu_ids(ann.get(contracts.ANNOTATION_GPU_IDS))
    share_keys = (contracts.ANNOTATION_GPU_MEMORY, contracts.ANNOTATION_GPU_MIN_UTIL, contracts.ANNOTATION_GPU_MAX_UTIL)
    if not ids or not any(k in ann for k in share_keys):
        return []
    min_pct = _parse_percent(ann.get(contracts.ANNOTATION_GPU_MIN_UTIL), 0.0, contracts.ANNOTATION_GPU_MIN_UTIL)
    max_pct = _parse_percent(ann.get(contracts.ANNOTATION_GPU_MAX_UTIL), 100.0, contracts.ANNOTATION_GPU_MAX_UTIL)
    if min_pct > max_pct:
        raise ValueError(f"minimum utilization {min_pct} above maximum {max_pct}")
    memory = _parse_memory(ann.get(contracts.ANNOTATION_GPU_MEMORY))
    ids_by_name = {
        s.get("name"): str(s.get("containerID") or "").split("://")[-1]
        for s in status.get("containerStatuses") or []
    }
    return [
        ContainerShare(
            pod_uid=meta["uid"], container=name, gpu_ids=tuple(ids), memory_bytes=memory, min_pct=min_pct,
            max_pct=max_pct, namespace=meta.get("namespace", ""), pod=meta.get("name", ""),
            container_id=ids_by_name.get(name, ""), labels=dict(meta.get("labels") or {}),
        )
        for name in _gpu_containers(spec)
    ]


def shares_from_file(path: Path) -> list[ContainerShare]:
    """Shares from a file: ``{"containers": [{"pod_uid", "container", "gpu_ids", "memory",
    "min_utilization", "max_utilization", "namespace"?, "pod"?}, ...]}`` (JSON or YAML)."""
    text = path.read_text()
    doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    out = []
    for entry in (doc or {}).get("containers", []):
        min_pct = float(entry.get("min_utilization", 0))
        max_pct = float(entry.get("max_utilization", 100))
        if not 0 <= min_pct <= max_pct <= 100:
            raise ValueError(f"bad utilization share in {entry!r}")
        out.append(ContainerShare(
            pod_uid=str(entry["pod_uid"]), container=str(entry["container"]),
            gpu_ids=tuple(int(i) for i in entry.get("gpu_ids", [0])),
            memory_bytes=_parse_memory(entry.get("memory")), min_pct=min_pct, max_pct=max_pct,
            namespace=str(entry.get("namespace", "")), pod=str(entry.get("pod", "")),
        ))
    return out
