"""`fifo`: first come, first served, every round (non-preemptive in effect: earlier jobs always win)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Predictions, Shares
from stretto.core.policies.rigid_requests import request_in_order
from stretto.core.snapshots import ClusterSnapshot

NAME = "fifo"


class FifoArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = FifoArgs


class FifoPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: FifoArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        ordered = sorted(snapshot.jobs, key=lambda j: (j.arrival_s, j.job_id))
        return Shares(request_in_order(ordered), policy_state=snapshot.policy_state)


def build(args: FifoArgs) -> FifoPolicy:
    return FifoPolicy(args)
