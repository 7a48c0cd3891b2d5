"""The utilization controller: from measurements to each container's cap and token rate.

Pure (no I/O, no clock): the daemon (daemon.py) feeds it one ``Observation`` per container per
tick and writes what it returns into the control files. Two steps per tick:

1. ``arbitrate_gpu`` (per GPU): each container's ceiling. Every container first gets its
   guaranteed minimum, capped by its demand; the remaining capacity is water-filled among the
   containers that want more, up to their maximum. A container is "greedy" (wants its maximum)
   when its launches were throttled or it ran at its cap; otherwise its demand is its measured
   utilization plus a headroom to grow into. So under contention each container gets at least
   its minimum, an idle neighbour's share goes to whoever can use it, and no one passes its max.
2. ``next_rate`` (per container): the bucket rate that yields the ceiling. Tokens are thread
   blocks whose GPU cost is unknown, but utilization per token is what the last interval
   measured, so ``rate = observed tokens/s * cap / measured utilization`` is scale-free; it is
   blended with the previous rate and bounded per step for stability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class ControllerArgs(BaseModel):
    """Tuning of the controller; defaults are what the tests and the docs assume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    headroom_pct: float = Field(5.0, ge=0, le=50, description="room (pp) a non-greedy container may grow into")
    throttled_fraction: float = Field(0.02, ge=0, le=1, description="throttled time share that means greedy")
    at_cap_margin_pct: float = Field(2.0, ge=0, le=20, description="utilization within this (pp) of cap: greedy")
    blend: float = Field(0.5, gt=0, le=1, description="weight of the new estimate in the rate update")
    max_step: float = Field(4.0, gt=1, description="largest factor the rate may change by in one tick")
    min_util_pct: float = Field(1.0, ge=0, description="below this the measurement is too small to trust")
    floor_pct: float = Field(1.0, ge=0, le=100, description="smallest cap handed out (keeps a job moving)")
    initial_tokens_per_percent: float = Field(
        2000.0, gt=0, description="first rate guess, tokens/s per percent, before any measurement"
    )


@dataclass(frozen=True, slots=True)
class ShareSpec:
    """A container's utilization share on one GPU, in percent."""

    min_pct: float
    max_pct: float


@dataclass(frozen=True, slots=True)
class Observation:
    """One tick's measurement of a container (over the same interval for all fields)."""

    util_pct: float  # its processes' utilization of the GPU, percent
    tokens_per_s: float  # tokens its launches consumed, per second
    throttled_fraction: float  # share of the interval its launches waited for tokens


@dataclass(frozen=True, slots=True)
class Decision:
    cap_pct: float
    rate: float
    fallback_rate: float  # rate at the guaranteed minimum (0: none)


def demand_pct(spec: ShareSpec, obs: Observation | None, previous_cap: float, args: ControllerArgs) -> float:
    """How much of the GPU the container would use if allowed (never above its max)."""
    if obs is None:
        return spec.max_pct  # new container: let it start at its ceiling
    greedy = (
        obs.throttled_fraction >= args.throttled_fraction
        or obs.util_pct >= previous_cap - args.at_cap_margin_pct
    )
    if greedy:
        return spec.max_pct
    return min(spec.max_pct, obs.util_pct + args.headroom_pct)


def arbitrate_gpu(specs: Mapping[str, ShareSpec], demands: Mapping[str, float], *,
                  capacity: float = 100.0, floor_pct: float = 1.0) -> dict[str, float]:
    """Ceilings for the containers of one GPU: minimums first, then water-filling to demand.

    Deterministic for given inputs. If the minimums alone exceed the capacity (an over-committed
    GPU) they are scaled down proportionally.
    """
    keys = sorted(specs)
    want = {k: max(0.0, min(demands.get(k, 0.0), specs[k].max_pct)) for k in keys}
    base = {k: min(specs[k].min_pct, want[k]) for k in keys}
    total_base = sum(base.values())
    if total_base > capacity and total_base > 0:
        base = {k: v * capacity / total_base for k, v in base.items()}
    alloc = dict(base)
    remaining = capacity - sum(alloc.values())
    hungry = [k for k in keys if want[k] > alloc[k] + 1e-9]
    while remaining > 1e-9 and hungry:
        share = remaining / len(hungry)
        next_hungry = []
        for k in hungry:
            give = min(share, want[k] - alloc[k])
            alloc[k] += give
            remaining -= give
            if want[k] - alloc[k] > 1e-9:
                next_hungry.append(k)
        if len(next_hungry) == len(hungry):
            break  # everyone took a full equal share: capacity is exhausted
        hungry = next_hungry
    return {k: min(specs[k].max_pct, max(alloc[k], min(floor_pct, specs[k].max_pct))) for k in keys}


def next_rate(rate: float, cap_pct: float, obs: Observation | None, args: ControllerArgs) -> float:
    """The bucket rate that makes the container's utilization converge to ``cap_pct``."""
    if obs is None or obs.tokens_per_s <= 0:
        return rate  # nothing to learn from: keep the rate (idle, or just started)
    if obs.util_pct < args.min_util_pct:
        # Too little to measure: if the bucket is what holds it back, the first guess was far too
        # low; grow by the largest step until the utilization is measurable.
        return rate * args.max_step if obs.throttled_fraction >= args.throttled_fraction else rate
    estimate = obs.tokens_per_s * cap_pct / obs.util_pct
    estimate = min(max(estimate, rate / args.max_step), rate * args.max_step)
    return max(1.0, (1 - args.blend) * rate + args.blend * estimate)


def initial_rate(cap_pct: float, args: ControllerArgs) -> float:
    return max(1.0, args.initial_tokens_per_percent * cap_pct)


def fallback_rate(rate: float, cap_pct: float, spec: ShareSpec) -> float:
    """The rate at the guaranteed minimum, for the shim to fall back to when the daemon is gone."""
    if spec.min_pct <= 0 or cap_pct <= 0:
        return 0.0
    return max(1.0, rate * min(spec.min_pct, cap_pct) / cap_pct)


@dataclass(slots=True)
class ContainerState:
    """What the controller remembers about a container between ticks."""

    rate: float
    cap_pct: float


def step(specs: Mapping[str, ShareSpec], gpu_of: Mapping[str, tuple[int, ...]],
         observations: Mapping[str, Observation | None], states: Mapping[str, ContainerState],
         args: ControllerArgs) -> dict[str, Decision]:
    """One controller tick over every container of the node.

    ``gpu_of`` maps a container to the GPUs it shares; a container on several GPUs gets the
    smallest of its per-GPU ceilings (its one bucket throttles all of its launches).
    """
    demands = {}
    for key, spec in specs.items():
        prev = states[key].cap_pct if key in states else spec.max_pct
        demands[key] = demand_pct(spec, observations.get(key), prev, args)
    by_gpu: dict[int, dict[str, ShareSpec]] = {}
    for key, gpus in gpu_of.items():
        for gpu in gpus:
            by_gpu.setdefault(gpu, {})[key] = specs[key]
    caps: dict[str, float] = {}
    for gpu in sorted(by_gpu):
        for key, cap in arbitrate_gpu(by_gpu[gpu], demands, floor_pct=args.floor_pct).items():
            caps[key] = min(cap, caps.get(key, cap))
    decisions = {}
    for key, spec in specs.items():
        cap = caps.get(key, spec.max_pct)
        if key in states:
            rate = next_rate(states[key].rate, cap, observations.get(key), args)
        else:
            rate = initial_rate(cap, args)
        decisions[key] = Decision(cap_pct=cap, rate=rate, fallback_rate=fallback_rate(rate, cap, spec))
    return decisions
