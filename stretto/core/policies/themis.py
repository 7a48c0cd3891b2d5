"""`themis`: finish-time fairness (Themis, as Gavel implements it).

Shares x_j minimise max_j ρ_j(x) with
    ρ_j(x) = (t_j + R_j / x_j) / (I_j + R_j / x_iso_j),
t_j the time since the job arrived, R_j its remaining time on its whole gang, I_j its
cumulative isolated time (progress so far, in time at the isolated share) and
x_iso_j = min(1, G / (N·g_j)) the time share of a 1/N slice of the cluster. Subject to
Σ g_j·x_j ≤ G and 0 ≤ x_j ≤ 1.

How it is solved: for a fixed ρ each job's smallest feasible share has a closed form,
x_j(ρ) = R_j / (ρ·D_j − t_j) with D_j the denominator, and Σ g_j·x_j(ρ) decreases in ρ, so
the optimum ρ* is found by bisection (60 halvings, relative precision ~1e-12); no LP is needed.
Capacity left at ρ* is handed out by water-filling so the allocation is work conserving. Then
Gavel's mechanism orders the jobs each round (`time_share_mechanism`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, Shares
from stretto.core.policies.time_share_mechanism import share_by_time_fractions
from stretto.core.policies.water_filling import water_fill
from stretto.core.snapshots import ClusterSnapshot

NAME = "themis"
BISECTION_STEPS = 60


class ThemisArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    reset_interval_s: float = Field(
        1000.0, ge=0.0, description="minimum seconds between recomputations of the shares (Gavel: 1000)"
    )


ARGS = ThemisArgs


def min_max_rho_shares(
    *,
    gpus: np.ndarray,
    since_arrival: np.ndarray,
    remaining: np.ndarray,
    isolated_so_far: np.ndarray,
    capacity: float,
) -> tuple[np.ndarray, float]:
    """Shares minimising the worst ρ, and that ρ. Arrays are per job."""
    n = gpus.size
    if n == 0:
        return gpus.astype(float), 0.0
    x_iso = np.minimum(1.0, capacity / (n * gpus))
    denominator = isolated_so_far + remaining / x_iso

    def needed(rho: float) -> np.ndarray:
        slack = rho * denominator - since_arrival
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(remaining <= 0, 0.0, remaining / slack)
        return np.where((slack <= 0) & (remaining > 0), np.inf, x)

    def feasible(rho: float) -> bool:
        x = needed(rho)
        return bool(np.all(x <= 1.0 + 1e-12) and float(np.dot(gpus, x)) <= capacity + 1e-9)

    lo = float(np.max((since_arrival + remaining) / denominator))  # every x_j = 1
    hi = max(lo, 1.0) * 2.0
    while not feasible(hi):
        hi *= 2.0
    if feasible(lo):
        hi = lo
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    x = np.minimum(needed(hi), 1.0)
    extra = water_fill(capacity - float(np.dot(gpus, x)), gpus * (1.0 - x), np.ones(n))
    return np.minimum(1.0, x + extra / gpus), hi


class ThemisPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: ThemisArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        return share_by_time_fractions(
            snapshot, predictions, allocate=_allocate, reset_interval_s=self.args.reset_interval_s
        )


def _allocate(
    snapshot: ClusterSnapshot, predictions: Predictions, extra: Mapping[str, Any]
) -> tuple[dict[str, float], dict[str, Any]]:
    # Cumulative isolated time grows by the progress made since the last computation, valued at
    # the isolated share of that computation (Gavel's bookkeeping).
    jobs = snapshot.jobs
    n, capacity = len(jobs), float(snapshot.total_gpus)
    done_before: Mapping[str, float] = extra.get("done_s", {})
    isolated_before: Mapping[str, float] = extra.get("isolated_s", {})
    gpus = np.array([j.max_gpus for j in jobs], dtype=float)
    remaining = np.array([predictions[j.job_id].remaining_seconds for j in jobs])
    done = np.array([predictions[j.job_id].isolated_seconds for j in jobs]) - remaining
    x_iso = np.minimum(1.0, capacity / (max(n, 1) * gpus))
    previous_done = np.array([done_before.get(j.job_id, 0.0) for j in jobs])
    isolated = np.array([isolated_before.get(j.job_id, 0.0) for j in jobs])
    isolated = isolated + np.maximum(done - previous_done, 0.0) / x_iso
    since_arrival = np.array([snapshot.now_s - j.arrival_s for j in jobs])
    x, _ = min_max_rho_shares(
        gpus=gpus,
        since_arrival=since_arrival,
        remaining=remaining,
        isolated_so_far=isolated,
        capacity=capacity,
    )
    ids = [j.job_id for j in jobs]
    new_extra = {
        "done_s": dict(zip(ids, done.tolist(), strict=True)),
        "isolated_s": dict(zip(ids, isolated.tolist(), strict=True)),
    }
    return dict(zip(ids, x.tolist(), strict=True)), new_extra


def build(args: ThemisArgs) -> ThemisPolicy:
    return ThemisPolicy(args)
