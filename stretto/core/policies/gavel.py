"""`gavel`: max-min fairness over normalised GPU-time (Gavel's LAS, homogeneous cluster).

Shares: x_j maximises min_j g_j·x_j / w_j subject to Σ g_j·x_j ≤ G and 0 ≤ x_j ≤ 1, solved
exactly by weighted water-filling (`water_filling`); then Gavel's mechanism turns them into
an order each round (`time_share_mechanism`).
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

NAME = "gavel"


class GavelArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    reset_interval_s: float = Field(
        1000.0, ge=0.0, description="minimum seconds between recomputations of the shares (Gavel: 1000)"
    )


ARGS = GavelArgs


def max_min_shares(snapshot: ClusterSnapshot) -> dict[str, float]:
    gpus = np.array([j.max_gpus for j in snapshot.jobs], dtype=float)
    weights = np.array([j.weight for j in snapshot.jobs], dtype=float)
    gpu_time = water_fill(float(snapshot.total_gpus), gpus, weights)
    return {j.job_id: float(x) for j, x in zip(snapshot.jobs, gpu_time / gpus, strict=True)}


class GavelPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: GavelArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        def allocate(
            snap: ClusterSnapshot, _: Predictions, extra: Mapping[str, Any]
        ) -> tuple[dict[str, float], dict[str, Any]]:
            return max_min_shares(snap), dict(extra)

        return share_by_time_fractions(
            snapshot, predictions, allocate=allocate, reset_interval_s=self.args.reset_interval_s
        )


def build(args: GavelArgs) -> GavelPolicy:
    return GavelPolicy(args)
