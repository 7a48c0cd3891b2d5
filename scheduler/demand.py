"""Read a Pod object (JSON as the API server writes it) into what the extender needs.

`pod_demand` answers "what does this pod ask for" (filter, bind); `pod_booking`
answers "what does this bound pod hold" (the watch, and the rebuild after a restart).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from stretto import contracts
from stretto.api.quantity import parse_quantity

from .model import FULL_UTILIZATION, Booking, PodDemand, ShareSpec

TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})
# Far beyond any node (an exabyte, a billion cores) and still exact in a float: a larger request
# is a mistake or an attack, and refusing it keeps the arithmetic downstream ordinary.
MAX_AMOUNT = 2**60
_SHOWN = 40  # characters of a bad value quoted back: enough to recognise, never the whole input


def clipped(value: Any) -> str:
    """`repr(value)`, cut short: error messages and logs never echo unbounded input."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"


class MalformedPod(ValueError):
    """The object is not a usable Pod (no name, no uid, wrong JSON types)."""


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedPod(f"{what} must be an object")
    return value


def _text(meta: Mapping[str, Any], key: str) -> str:
    value = meta.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedPod(f"pod metadata.{key} is missing")
    return value


def _container_requests(container: Any) -> dict[str, Any]:
    """Requests, falling back to limits per resource (the API server's defaulting for limits-only)."""
    container = _mapping(container, "container")
    resources = _mapping(container.get("resources"), "container resources")
    limits = _mapping(resources.get("limits"), "resources.limits")
    requests = _mapping(resources.get("requests"), "resources.requests")
    return {**limits, **requests}


def _amounts(pod: Mapping[str, Any]) -> dict[str, int]:
    """Effective requests: the sum over containers, at least the largest init container, plus overhead."""
    spec = _mapping(pod.get("spec"), "pod spec")
    containers = spec.get("containers") or []
    init_containers = spec.get("initContainers") or []
    if not isinstance(containers, list) or not isinstance(init_containers, list):
        raise MalformedPod("pod spec containers must be lists")

    def convert(name: str, value: Any) -> int:
        try:
            amount = parse_quantity(value)
        except ValueError:
            raise MalformedPod(f"resource {name}: invalid quantity {clipped(value)}") from None
        if amount < 0:
            raise MalformedPod(f"resource {name}: negative quantity {clipped(value)}")
        if amount > MAX_AMOUNT:  # checked before rounding: 1e999999999 must not become an int
            raise MalformedPod(f"resource {name}: quantity {clipped(value)} is beyond any node")
        return math.ceil(amount * 1000) if name == "cpu" else math.ceil(amount)  # as the API server rounds

    wanted = ("cpu", "memory", contracts.GPU_RESOURCE, contracts.GPU_SHARE_RESOURCE)
    totals = dict.fromkeys(wanted, 0)
    for container in containers:
        requests = _container_requests(container)
        for name in wanted:
            if name in requests:
                totals[name] += convert(name, requests[name])
    for container in init_containers:
        requests = _container_requests(container)
        for name in wanted:
            if name in requests:
                totals[name] = max(totals[name], convert(name, requests[name]))
    overhead = _mapping(spec.get("overhead"), "pod overhead")
    for name in ("cpu", "memory"):
        if name in overhead:
            totals[name] += convert(name, overhead[name])
    return totals


def _percent(annotations: Mapping[str, Any], key: str, default: int) -> int:
    raw = annotations.get(key)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip().rstrip("%"))
    except ValueError:
        raise ValueError(f"{key} must be a whole percent, got {clipped(raw)}") from None
    if not 0 <= value <= FULL_UTILIZATION:
        raise ValueError(f"{key} must be within 0..100, got {value}")
    return value


def share_spec(annotations: Mapping[str, Any]) -> ShareSpec:
    """The GPU share a pod asks for; raises ValueError with a user-facing message."""
    raw_memory = annotations.get(contracts.ANNOTATION_GPU_MEMORY)
    if raw_memory is None:
        raise ValueError(f"a GPU share needs the annotation {contracts.ANNOTATION_GPU_MEMORY} (bytes)")
    try:
        memory = parse_quantity(str(raw_memory))  # bytes; a quantity such as 10Gi is accepted too
    except ValueError:
        raise ValueError(f"{contracts.ANNOTATION_GPU_MEMORY} must be bytes, got {clipped(raw_memory)}") from None
    if not 0 < memory <= MAX_AMOUNT:
        raise ValueError(
            f"{contracts.ANNOTATION_GPU_MEMORY} must be a positive byte count, got {clipped(raw_memory)}")
    low = _percent(annotations, contracts.ANNOTATION_GPU_MIN_UTIL, 0)
    high = _percent(annotations, contracts.ANNOTATION_GPU_MAX_UTIL, FULL_UTILIZATION)
    if high == 0 or low > high:
        raise ValueError(f"GPU utilization band {low}..{high}% is empty")
    return ShareSpec(memory_bytes=math.ceil(memory), min_utilization=low, max_utilization=high)


def pod_demand(pod: Any) -> PodDemand:
    """What `pod` asks for. Raises MalformedPod if it is not a Pod; a Pod whose GPU request
    cannot be honoured anywhere gets `invalid_reason` instead, so the user sees why."""
    pod = _mapping(pod, "Pod")
    meta = _mapping(pod.get("metadata"), "pod metadata")
    namespace, name, uid = _text(meta, "namespace"), _text(meta, "name"), _text(meta, "uid")
    annotations = _mapping(meta.get("annotations"), "pod annotations")
    amounts = _amounts(pod)
    planned = annotations.get(contracts.ANNOTATION_PLANNED_NODE)
    base = PodDemand(
        namespace=namespace, name=name, uid=uid,
        cpu_millis=amounts["cpu"], memory_bytes=amounts["memory"],
        planned_node=(planned.strip() or None) if isinstance(planned, str) else None,
    )
    gpus, shares = amounts[contracts.GPU_RESOURCE], amounts[contracts.GPU_SHARE_RESOURCE]

    def invalid(reason: str) -> PodDemand:
        return replace(base, invalid_reason=reason)

    if gpus and shares:
        return invalid(f"pod asks for both {contracts.GPU_RESOURCE} and {contracts.GPU_SHARE_RESOURCE}")
    if shares:
        if shares != 1:
            return invalid(f"{contracts.GPU_SHARE_RESOURCE} must be 1, got {shares}")
        try:
            share = share_spec(annotations)
        except ValueError as exc:
            return invalid(str(exc))
        return replace(base, share=share)
    return replace(base, whole_gpus=gpus)


def pod_booking(pod: Any) -> Booking | None:
    """What a pod holds on its node, or None if it holds nothing (unbound, finished, malformed).

    Device ids come from stretto.io/gpu-ids; a pod holding GPUs without it (placed by another
    scheduler, or an unreadable value) is booked as anonymous GPUs so its devices are never reused.
    """
    try:
        pod = _mapping(pod, "Pod")
        meta = _mapping(pod.get("metadata"), "pod metadata")
        uid = _text(meta, "uid")
        spec = _mapping(pod.get("spec"), "pod spec")
        status = _mapping(pod.get("status"), "pod status")
        node = spec.get("nodeName")
        if not isinstance(node, str) or not node or status.get("phase") in TERMINAL_PHASES:
            return None
        annotations = _mapping(meta.get("annotations"), "pod annotations")
        amounts = _amounts(pod)
    except MalformedPod:
        return None
    gpus, shares = amounts[contracts.GPU_RESOURCE], amounts[contracts.GPU_SHARE_RESOURCE]
    try:
        ids = tuple(contracts.parse_gpu_ids(annotations.get(contracts.ANNOTATION_GPU_IDS)))
    except ValueError:
        ids = ()
    booking = Booking(uid=uid, node=node, cpu_millis=amounts["cpu"], memory_bytes=amounts["memory"])
    if shares and not gpus:
        try:
            share = share_spec(annotations)
        except ValueError:
            share = None
        if share is not None and len(ids) == 1:
            return replace(booking, gpu_ids=ids, share=share)
        # A share we cannot pin to a device: hold a whole device rather than risk overcommitting one.
        return replace(booking, anonymous_gpus=1)
    if gpus:
        if ids:
            return replace(booking, gpu_ids=ids)
        return replace(booking, anonymous_gpus=gpus)
    return booking
