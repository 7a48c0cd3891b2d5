"""Shockwave's smoothed fair finish time: a time-weighted average of a job's past estimates.

Each time the job set changes, every job's finish time under an equal share is re-estimated.
F̄ = 0.9·(average of the estimates, each weighted by how long it stood) + 0.1·(latest estimate),
so one optimistic or pessimistic moment does not move a job's target much. The history is
kept as four numbers (first time, weighted sum up to the latest estimate, latest time, latest
estimate), so the policy state stays O(1) per job.
"""

from __future__ import annotations

from collections.abc import Sequence

MOMENTUM = 0.9


def record_estimate(history: Sequence[float] | None, now: float, estimate: float) -> list[float]:
    """[first_s, weighted_sum, last_s, last_estimate] after recording `estimate` at `now`."""
    if not history:
        return [now, 0.0, now, estimate]
    first, weighted, last, value = history
    return [first, weighted + value * (now - last), now, estimate]


def smoothed_finish_time(history: Sequence[float], now: float) -> float:
    first, weighted, last, value = history
    span = now - first
    average = (weighted + value * (now - last)) / span if span > 0 else value
    return MOMENTUM * average + (1.0 - MOMENTUM) * value
