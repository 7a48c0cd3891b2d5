"""Opt-in GPU sharing for the ordered packers (`share_gpus: true` on `proportional` and `synergy-tune`).

The policy's requests are first placed in order on whole GPUs, exactly as without sharing. The
requests that did not fit are then walked again, in the policy's order:
1. a 1-worker, 1-GPU job joins the GPU of a placed single-GPU job it pairs well with (highest
   combined normalised throughput first, `CoLocationTable.candidate`), if that node has the CPU
   and memory for half the job's demand once the host gives up half of its own;
2. otherwise (gangs included) placed single-GPU jobs that pair well are consolidated two to a GPU,
   best pair first, until the waiting job fits; a job needing g GPUs gets at most g consolidations,
   and if it still does not fit, every consolidation made for it is undone.
Why it pays: a pair above the threshold does c > 1.1 GPUs' worth of work on one GPU, so a guest that
would otherwise wait adds c - 1 > 0, and freeing a GPU for a waiting job turns 2 GPUs' worth into
c + 1 > 2. It does cost the jobs that share: each runs at its relative speed (< 1).

Makespan guard (`guard_makespan`, off by default): a placed job is slowed (as host or in a
consolidated pair) only if, at its shared speed, its remaining time alone would still not exceed the
longest remaining time of any active job (remaining samples at the current batch size on the
job's GPUs). Without it the longest single-GPU jobs, which policies place first, end up as hosts
round after round and become the makespan (Shockwave's trace, `stretto`: +8 % makespan). With it,
makespan improves there but the slowdown lands on shorter jobs: average JCT and unfairness get
worse (bench/bench_gpu_sharing.py), so it is not the default.

Invariants: only a job running exactly one worker on one GPU ever shares (gangs and multi-GPU
workers never do); a GPU holds at most two jobs; no node goes over its CPUs or memory (a host keeps
half its CPU and memory, a guest brings half its whole-GPU demand, so per GPU's worth both keep
their per-GPU resources and the job model's CPU/memory sensitivity reads the same cell); where
workers cannot move, a running (pinned) worker is never moved or shrunk, though a new job may join
its GPU if the node has room.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stretto.core.colocation import DEFAULT_GPU_TYPE, DEFAULT_THRESHOLD, CoLocationTable, JobKey, find_colocation_table
from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import EPS, NodeLedger
from stretto.core.packers.ordered_placement import PlaceFn, place_in_order, valid_requests
from stretto.core.snapshots import ClusterSnapshot, JobState

# Per worker, on a whole GPU: CPUs and memory, per node or scalar (see `worker_demand`).
DemandFn = Callable[[JobState, NodeLedger], tuple[np.ndarray | float, np.ndarray | float]]


class GpuSharingArgs(BaseModel):
    """The packer args that turn GPU sharing on; off by default, so nothing changes unless asked."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    share_gpus: bool = Field(False, description="co-locate single-GPU jobs that did not fit (see gpu_sharing)")
    colocation_table: str | None = Field(
        None, description="Shockwave's tacc_throughputs.json (file or folder); default: the peers' folder"
    )
    colocation_gpu_type: str = Field(DEFAULT_GPU_TYPE, description="which GPU type's pairs to read")
    min_combined_speed: float = Field(
        DEFAULT_THRESHOLD, gt=1.0, description="share only pairs whose relative speeds sum above this"
    )
    guard_makespan: bool = Field(False, description="never slow a job so much it would finish after all others")


def colocation_for(args: GpuSharingArgs) -> CoLocationTable | None:
    return find_colocation_table(args.colocation_table, args.colocation_gpu_type) if args.share_gpus else None


def _key(job: JobState) -> JobKey:
    return job.model, job.batch_size


def _remaining_alone_s(job: JobState, gpus: int) -> float:
    rate = job.profile.throughput(job.batch_size, gpus)
    return job.remaining_samples / rate if rate > 0 else float("inf")


def _at(value: np.ndarray | float, node: int, ledger: NodeLedger) -> float:
    return float(np.broadcast_to(np.asarray(value, dtype=float), ledger.free_gpus.shape)[node])


@dataclass(slots=True)
class GpuSharing:
    """One round's sharing pass (built per `pack`)."""

    table: CoLocationTable
    threshold: float
    demands: Sequence[DemandFn]  # whole-GPU demands to try for a sharing worker, most preferred first
    guard_makespan: bool = False
    longest_s: float = float("inf")  # the longest remaining time of an active job (the makespan guard)

    @classmethod
    def of(cls, table: CoLocationTable, args: GpuSharingArgs, demands: Sequence[DemandFn]) -> GpuSharing:
        return cls(table, args.min_combined_speed, demands, args.guard_makespan)

    def pack(self, snapshot: ClusterSnapshot, shares: Shares, place: PlaceFn) -> Placement:
        ledger, placement = place_in_order(snapshot, shares, place)
        if not placement.unplaced:
            return placement
        jobs = {j.job_id: j for j in snapshot.jobs}
        self.longest_s = (
            max(_remaining_alone_s(j, j.max_gpus) for j in snapshot.jobs) if self.guard_makespan else float("inf")
        )
        unplaced = dict(placement.unplaced)
        pairs: list[tuple[str, str]] | None = None
        for job, request in valid_requests(snapshot, shares)[0]:
            if job.job_id not in unplaced or job.job_id in ledger.placed:
                continue
            if request.gpus == 1 and job.gpus_per_worker == 1 and self._join(job, ledger, jobs):
                del unplaced[job.job_id]
                continue
            pairs = self._pairs(ledger, jobs) if pairs is None else pairs
            if self._consolidate(job, request, ledger, jobs, pairs, place):
                del unplaced[job.job_id]
        return Placement(ledger.allocations(), MappingProxyType(unplaced))

    def _fits(self, job: JobState, ledger: NodeLedger, node: int, room: tuple[float, float]) -> tuple[float, float]:
        """Half the first demand that fits in `room` on `node`, or (-1, -1)."""
        for demand in self.demands:
            cpus, memory = demand(job, ledger)
            c, m = 0.5 * _at(cpus, node, ledger), 0.5 * _at(memory, node, ledger)
            if c <= room[0] + EPS and m <= room[1] + EPS:
                return c, m
        return -1.0, -1.0

    def _may_slow(self, job: JobState, speed: float) -> bool:
        """The makespan guard: at `speed`, the job would still not outlast the longest remaining job."""
        return speed > 0 and _remaining_alone_s(job, 1) / speed <= self.longest_s

    def _join(self, guest: JobState, ledger: NodeLedger, jobs: dict[str, JobState]) -> bool:
        """Step 1: put `guest` on the GPU of the best-pairing lone single-GPU job with room for it."""
        hosts = []
        for rank, host_id in enumerate(ledger.placed):
            if ledger.single(host_id) is None:
                continue
            speeds = self.table.candidate(_key(guest), _key(jobs[host_id]), self.threshold)
            if speeds is not None and self._may_slow(jobs[host_id], speeds[1]):
                hosts.append((-sum(speeds), rank, host_id))
        for _, _, host_id in sorted(hosts):
            node = ledger.placed[host_id][0].node
            cpus, memory = self._fits(guest, ledger, node, ledger.room_to_join(host_id))
            if cpus >= 0:
                ledger.join(guest.job_id, host_id, cpus=cpus, memory=memory)
                return True
        return False

    def _pairs(self, ledger: NodeLedger, jobs: dict[str, JobState]) -> list[tuple[str, str]]:
        """Placed lone single-GPU jobs that pair well, best combined throughput first (earlier job first)."""
        singles = [j for j in ledger.placed if ledger.single(j) is not None]
        found = []
        for i, a in enumerate(singles):
            for j in range(i + 1, len(singles)):
                b = singles[j]
                if ledger.placed[a][0].pinned and ledger.placed[b][0].pinned:
                    continue  # neither may move
                speeds = self.table.candidate(_key(jobs[a]), _key(jobs[b]), self.threshold)
                if speeds is not None and self._may_slow(jobs[a], speeds[0]) and self._may_slow(jobs[b], speeds[1]):
                    found.append((-sum(speeds), i, j, a, b))
        return [(a, b) for *_, a, b in sorted(found)]

    def _merge(self, a: str, b: str, ledger: NodeLedger, jobs: dict[str, JobState]) -> bool:
        """Move one job of a lone pair onto the other's GPU (the later one, unless it is pinned)."""
        host, mover = (b, a) if ledger.placed[b][0].pinned else (a, b)
        host_w, mover_w = ledger.placed[host][0], ledger.placed[mover][0]
        room_c, room_m = ledger.room_to_join(host)
        if mover_w.node == host_w.node:
            room_c, room_m = room_c + mover_w.cpus, room_m + mover_w.memory_gib
        cpus, memory = self._fits(jobs[mover], ledger, host_w.node, (room_c, room_m))
        if cpus < 0:
            return False
        ledger.release(mover)
        ledger.join(mover, host, cpus=cpus, memory=memory)
        return True

    def _consolidate(
        self,
        job: JobState,
        request: ShareRequest,
        ledger: NodeLedger,
        jobs: dict[str, JobState],
        pairs: list[tuple[str, str]],
        place: PlaceFn,
    ) -> bool:
        """Step 2: consolidate pairs (at most one per GPU the job needs) until `job` fits; else undo them."""
        need = request.gpus
        usable = [(a, b) for a, b in pairs if ledger.single(a) is not None and ledger.single(b) is not None]
        if ledger.total_free_gpus + len({j for p in usable for j in p}) // 2 < need:
            return False
        state = ledger.checkpoint()
        merged = 0
        for a, b in usable:
            if merged == need:
                break
            if ledger.single(a) is None or ledger.single(b) is None or not self._merge(a, b, ledger, jobs):
                continue
            merged += 1
            if ledger.total_free_gpus >= need and place(job, request, ledger) is None:
                return True
        ledger.restore(state)
        return False
