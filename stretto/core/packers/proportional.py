"""`proportional`: CPU and memory strictly proportional to GPUs (each node's per-GPU share).

Today's default everywhere, and Synergy's `+fair` baseline. With `share_gpus: true`, single-GPU jobs
that did not fit may share a GPU (`gpu_sharing`), each with half the proportional share of it.
"""

from __future__ import annotations

from typing import ClassVar

from stretto.core.colocation import CoLocationTable
from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.gpu_sharing import GpuSharing, GpuSharingArgs, colocation_for
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.packers.ordered_placement import place_in_order, place_with_demand
from stretto.core.packers.worker_demand import proportional_demand
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "proportional"
NO_ROOM = "no node set has room for its workers at the proportional share"


class ProportionalArgs(GpuSharingArgs):
    pass


ARGS = ProportionalArgs


def place_proportionally(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    cpus, memory = proportional_demand(job, ledger)
    return place_with_demand(job, request, ledger, cpus, memory, NO_ROOM)


class ProportionalPacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: ProportionalArgs, colocation: CoLocationTable | None = None) -> None:
        self.args = args
        # The co-location model when sharing is on (the simulator runs shared jobs by the same table).
        self.colocation = (colocation or colocation_for(args)) if args.share_gpus else None

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        if self.colocation is not None:
            sharing = GpuSharing.of(self.colocation, self.args, (proportional_demand,))
            return sharing.pack(snapshot, shares, place_proportionally)
        return place_in_order(snapshot, shares, place_proportionally)[1]


def build(args: ProportionalArgs) -> ProportionalPacker:
    return ProportionalPacker(args)
