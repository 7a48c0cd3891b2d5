"""`srtf`: shortest remaining time first, fully preemptive (Synergy's SRTF).

Remaining time is the predictor's, at the GPU-proportional share or at the job's ideal CPU and
memory (`speed`); Synergy uses the latter with its greedy/tune packers.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, Shares
from stretto.core.policies.rigid_requests import request_in_order
from stretto.core.snapshots import ClusterSnapshot

NAME = "srtf"


class SrtfArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    speed: Literal["proportional", "ideal"] = Field(
        "proportional",
        description="speed the remaining time is estimated at: GPU-proportional or ideal CPU/memory",
    )


ARGS = SrtfArgs


class SrtfPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: SrtfArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        ideal = self.args.speed == "ideal"

        def remaining(job_id: str) -> float:
            p = predictions[job_id]
            return p.remaining_seconds_ideal if ideal else p.remaining_seconds

        ordered = sorted(snapshot.jobs, key=lambda j: (remaining(j.job_id), j.arrival_s, j.job_id))
        return Shares(request_in_order(ordered), policy_state=snapshot.policy_state)


def build(args: SrtfArgs) -> SrtfPolicy:
    return SrtfPolicy(args)
