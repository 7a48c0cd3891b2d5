"""`proportional`: CPU and memory strictly proportional to GPUs (each node's per-GPU share).

Today's default everywhere, and Synergy's `+fair` baseline.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.packers.ordered_placement import place_in_order, place_with_demand
from stretto.core.packers.worker_demand import proportional_demand
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "proportional"
NO_ROOM = "no node set has room for its workers at the proportional share"


class ProportionalArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = ProportionalArgs


def place_proportionally(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    cpus, memory = proportional_demand(job, ledger)
    return place_with_demand(job, request, ledger, cpus, memory, NO_ROOM)


class ProportionalPacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: ProportionalArgs) -> None:
        self.args = args

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        return place_in_order(snapshot, shares, place_proportionally)[1]


def build(args: ProportionalArgs) -> ProportionalPacker:
    return ProportionalPacker(args)
