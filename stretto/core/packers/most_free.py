"""`most-free`: GPU-proportional CPU and memory, workers on the node with the most free GPUs first.

Pollux's simulator places its Tiresias and Optimus jobs this way: as many of a job's workers as
fit on the node with the most free GPUs (lowest index on ties), then the next such node, and so
on. A job that fits on one node may still be spread when no node has room for it whole, and where
throughput depends on the placement (`ModelProfile.placement_rates`) the spread job runs slower.
Where workers cannot move a running job keeps its workers where they are and only new or resumed
jobs (or a growing job's new workers) are placed, as on a live cluster. `resized_anew` is Pollux's
simulator's mechanics: a job whose GPU count changes is placed anew (it does not grow or shrink a
job where it is; every allocation change restarts it there anyway).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import EPS, NodeLedger
from stretto.core.packers.ordered_placement import place_in_order
from stretto.core.packers.worker_demand import proportional_demand
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "most-free"
NO_ROOM = "no nodes have room for its workers at the proportional share"


class MostFreeArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    resized_anew: bool = Field(
        False, description="a job whose GPU count changes is placed anew (Pollux's simulator), not resized in place"
    )


ARGS = MostFreeArgs


def most_free_plan(ledger: NodeLedger, workers: int, gpus_per_worker: int, cpus: np.ndarray,
                   memory: np.ndarray) -> list[tuple[int, int]] | None:
    """(node, workers there), filling the node with the most free GPUs first; None if they do not all fit."""
    free = ledger.free_gpus.copy()
    free_cpus, free_memory = ledger.free_cpus.copy(), ledger.free_memory.copy()
    plan: list[tuple[int, int]] = []
    left = workers
    while left > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.minimum(free // gpus_per_worker,
                              np.minimum(np.where(cpus > 0, np.floor((free_cpus + EPS) / cpus), np.inf),
                                         np.where(memory > 0, np.floor((free_memory + EPS) / memory), np.inf)))
        candidates = np.flatnonzero(room >= 1)
        if candidates.size == 0:
            return None
        node = int(candidates[np.argmax(free[candidates])])  # argmax: the lowest index among ties
        take = int(min(left, room[node]))
        plan.append((node, take))
        free[node] -= take * gpus_per_worker
        free_cpus[node] -= take * cpus[node]
        free_memory[node] -= take * memory[node]
        left -= take
    return plan


def place_most_free(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    cpus, memory = proportional_demand(job, ledger)
    plan = most_free_plan(ledger, request.gpus // job.gpus_per_worker, job.gpus_per_worker, cpus, memory)
    if plan is None:
        return NO_ROOM
    ledger.commit(job.job_id, plan, gpus_per_worker=job.gpus_per_worker, cpus=cpus, memory=memory)
    return None


class MostFreePacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: MostFreeArgs) -> None:
        self.args = args

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        if not self.args.resized_anew:
            return place_in_order(snapshot, shares, place_most_free)[1]
        requested = {r.job_id: r.gpus for r in shares.requests}
        unchanged = {k: a for k, a in snapshot.previous.items() if requested.get(k) == a.gpus}
        if len(unchanged) != len(snapshot.previous):
            snapshot = replace(snapshot, previous=MappingProxyType(unchanged))
        return place_in_order(snapshot, shares, place_most_free)[1]


def build(args: MostFreeArgs) -> MostFreePacker:
    return MostFreePacker(args)
