"""Pure filter, score and device-picking logic over `NodeView`s: snapshot in, decision out.

Reasons are short, start with "stretto:" and avoid node names and per-node numbers where they can,
because kube-scheduler groups identical reasons in the pod's FailedScheduling event
("0/1000 nodes are available: 990 stretto: 0 of 8 GPUs free, pod needs 4, ...").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .model import FULL_UTILIZATION, MIB, DeviceView, NodeView, PodDemand

MAX_SCORE = 10  # kube-scheduler's MaxExtenderPriority
# Best-fit weights: GPUs are the scarce resource; CPU and memory break ties between GPU-equal nodes.
GPU_WEIGHT, CPU_WEIGHT, MEMORY_WEIGHT = 2.0, 1.0, 1.0
UNKNOWN_NODE = "stretto: node not in the extender's cache yet"


class NoFit(Exception):
    """The pod cannot be placed on this node; str(exc) is the user-facing reason."""

    def __init__(self, reason: str, *, resolvable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.resolvable = resolvable  # False: waiting or preempting cannot make it fit


@dataclass(frozen=True, slots=True)
class FilterOutcome:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)          # preemption or waiting may help
    unresolvable: dict[str, str] = field(default_factory=dict)    # it will not


def _gib(n_bytes: int) -> str:
    gib = n_bytes / (1024 * MIB)
    return f"{gib:.0f} GiB" if gib >= 10 or gib == int(gib) else f"{gib:.1f} GiB"


def _share_fits(demand: PodDemand, view: NodeView, device: DeviceView) -> bool:
    share = demand.share
    assert share is not None
    return (
        not device.whole
        and device.shared_memory_bytes + share.memory_bytes <= view.gpu_memory_bytes
        and device.shared_min_utilization + share.min_utilization <= FULL_UTILIZATION
        and (not device.idle or view.free_whole_gpus > 0)
    )


def pick_devices(demand: PodDemand, view: NodeView) -> tuple[int, ...]:
    """The device indices this pod gets on `view`'s node; raises NoFit with the reason otherwise.

    Whole GPUs: the lowest contiguous run of idle devices if there is one (neighbouring indices
    usually share a switch or NVLink), else the lowest idle ones. A share: the already-shared device
    it fits best (least memory left), so idle devices stay whole for whole-GPU pods; else the lowest
    idle device.
    """
    if demand.invalid_reason is not None:
        raise NoFit(f"stretto: {demand.invalid_reason}", resolvable=False)
    if demand.share is not None:
        return _pick_shared(demand, view)
    wanted = demand.whole_gpus
    if wanted == 0:
        return ()
    if view.gpu_count == 0:
        raise NoFit("stretto: node has no GPUs", resolvable=False)
    if wanted > view.gpu_count:
        raise NoFit(f"stretto: pod needs {wanted} GPUs, node has {view.gpu_count}", resolvable=False)
    free = view.free_whole_gpus
    if wanted > free:
        raise NoFit(f"stretto: {free} of {view.gpu_count} GPUs free, pod needs {wanted}")
    idle = view.idle_ids
    for start in range(len(idle) - wanted + 1):
        if idle[start + wanted - 1] - idle[start] == wanted - 1:
            return idle[start:start + wanted]
    return idle[:wanted]


def _pick_shared(demand: PodDemand, view: NodeView) -> tuple[int, ...]:
    share = demand.share
    assert share is not None
    if view.gpu_count == 0:
        raise NoFit("stretto: node has no GPUs", resolvable=False)
    if share.memory_bytes > view.gpu_memory_bytes:
        raise NoFit(
            f"stretto: GPU share needs {_gib(share.memory_bytes)}, "
            f"devices have {_gib(view.gpu_memory_bytes)}",
            resolvable=False,
        )
    fitting = [d for d in view.devices if _share_fits(demand, view, d)]
    if not fitting:
        raise NoFit(
            f"stretto: no GPU has room for a {_gib(share.memory_bytes)}, "
            f"{share.min_utilization}% share"
        )
    shared = [d for d in fitting if not d.idle]
    if shared:
        best = min(shared, key=lambda d: (view.gpu_memory_bytes - d.shared_memory_bytes, d.index))
        return (best.index,)
    return (min(d.index for d in fitting),)


def check_node(demand: PodDemand, view: NodeView | None) -> tuple[int, ...]:
    """The devices the pod would get on this node; raises NoFit if it may not go there (plan, GPUs)."""
    if view is None:
        raise NoFit(UNKNOWN_NODE)
    if demand.invalid_reason is not None:
        raise NoFit(f"stretto: {demand.invalid_reason}", resolvable=False)
    if demand.planned_node is not None and demand.planned_node != view.name:
        raise NoFit(f"stretto: this round planned the pod for node {demand.planned_node}", resolvable=False)
    return pick_devices(demand, view)


def filter_nodes(demand: PodDemand, names: Iterable[str], views: Mapping[str, NodeView]) -> FilterOutcome:
    """Each node's verdict; nodes of one shape share one (decided once), except the planned node's."""
    outcome = FilterOutcome()
    verdicts: dict[int, NoFit | None] = {}
    for name in names:
        view = views.get(name)
        verdict: NoFit | None
        if view is None or view.shape_id < 0 or name == demand.planned_node:
            verdict = _verdict(demand, view)
        else:
            key = view.shape_id
            if key in verdicts:
                verdict = verdicts[key]
            else:
                verdict = verdicts[key] = _verdict(demand, view)
        if verdict is None:
            outcome.passed.append(name)
        else:
            (outcome.failed if verdict.resolvable else outcome.unresolvable)[name] = verdict.reason
    return outcome


def _verdict(demand: PodDemand, view: NodeView | None) -> NoFit | None:
    try:
        check_node(demand, view)
    except NoFit as no_fit:
        return no_fit
    return None


def score_node(demand: PodDemand, view: NodeView | None) -> int:
    """Multi-resource best fit, 0..10: the weighted mean of how full the node's GPUs, CPU and
    memory would be with the pod on it. Fuller is better, so GPUs are packed and whole nodes stay
    free for big jobs. A node the pod does not fit scores 0.
    """
    try:
        ids = check_node(demand, view)
    except NoFit:
        return 0
    assert view is not None
    if demand.planned_node is not None:
        return MAX_SCORE
    weighted = weights = 0.0
    if view.gpu_count:
        added: float = demand.whole_gpus
        if demand.share is not None and ids:
            device = view.devices[ids[0]]
            after = DeviceView(
                index=device.index,
                shared_memory_bytes=device.shared_memory_bytes + demand.share.memory_bytes,
                shared_min_utilization=device.shared_min_utilization + demand.share.min_utilization,
                shares=device.shares + 1,
            )
            added = view.share_fraction(after) - view.share_fraction(device) * (not device.idle)
        weighted += GPU_WEIGHT * min(1.0, (view.gpus_in_use + added) / view.gpu_count)
        weights += GPU_WEIGHT
    if view.cpu_millis > 0:
        weighted += CPU_WEIGHT * min(1.0, (view.cpu_requested + demand.cpu_millis) / view.cpu_millis)
        weights += CPU_WEIGHT
    if view.memory_bytes > 0:
        memory_after = view.memory_requested + demand.memory_bytes
        weighted += MEMORY_WEIGHT * min(1.0, memory_after / view.memory_bytes)
        weights += MEMORY_WEIGHT
    if not weights:
        return 0
    fullness = weighted / weights
    return max(0, min(MAX_SCORE, math.floor(MAX_SCORE * fullness + 0.5)))


def score_nodes(
    demand: PodDemand, names: Iterable[str], views: Mapping[str, NodeView]
) -> list[tuple[str, int]]:
    """Each node's score, computed once per shape (the planned node's on its own)."""
    scores: dict[int, int] = {}
    out = []
    for name in names:
        view = views.get(name)
        if view is None or view.shape_id < 0 or name == demand.planned_node:
            out.append((name, score_node(demand, view)))
            continue
        key = view.shape_id
        if key not in scores:
            scores[key] = score_node(demand, view)
        out.append((name, scores[key]))
    return out


def best_fit(demand: PodDemand, passed: list[str], views: Mapping[str, NodeView]) -> list[str]:
    """The passed nodes of the highest score: the ones the pod packs best onto."""
    if len(passed) < 2:
        return passed
    scored = score_nodes(demand, passed, views)
    top = max(score for _, score in scored)
    return [name for name, score in scored if score == top]
