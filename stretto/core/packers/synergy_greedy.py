"""`synergy-greedy`: give each job its ideal CPU and memory, or skip it this round.

Under CPU or memory pressure this leaves GPUs idle (a job waits although GPUs are free): the
behaviour Synergy's Tune was designed to fix.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.packers.ordered_placement import place_in_order, place_with_demand
from stretto.core.packers.worker_demand import ideal_demand
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "synergy-greedy"
NO_ROOM = "its ideal CPU/memory demand fits on no node with free GPUs"


class SynergyGreedyArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = SynergyGreedyArgs


def place_ideally(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    cpus, memory = ideal_demand(job, ledger)
    return place_with_demand(job, request, ledger, cpus, memory, NO_ROOM)


class SynergyGreedyPacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: SynergyGreedyArgs) -> None:
        self.args = args

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        return place_in_order(snapshot, shares, place_ideally)[1]


def build(args: SynergyGreedyArgs) -> SynergyGreedyPacker:
    return SynergyGreedyPacker(args)
