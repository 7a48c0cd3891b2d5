"""`synergy-tune`: Synergy's heuristic — ideal demand, else proportional, else revert peers.

Per job, in the policy's order:
1. place it at its ideal CPU and memory if that fits;
2. else, if the ideal is above the proportional share in any dimension, lower those
   dimensions to the proportional share and try again;
3. else free room on nodes that have free GPUs by reverting jobs placed earlier this round to
   at most their proportional share. Nodes are tried as Synergy does (for a gang, a node with
   enough free GPUs if one exists, best fit; else nodes with the fewest free GPUs first); on a
   node the peers are walked by (fewest nodes spanned, most CPU per GPU, most memory per GPU),
   and a peer is reverted when its excess over proportional covers a dimension of the remaining
   shortfall, stopping as soon as everything is covered;
4. place the job at the lowered demand: it now fits, since every job on those nodes is at most
   at its proportional share.
Where workers cannot move (a live cluster), running workers are pinned at the CPU and memory
they were created with, so step 1 grants the ideal only out of a node's slack and never out of a
free GPU's proportional share (`place_reserving`): a GPU stranded by a pinned neighbour's CPUs
stays idle until that neighbour ends.
Reverting only ever lowers a peer's CPU or memory (a peer below proportional in a dimension
keeps its amount), so it never needs room it does not have. With `share_gpus: true`, single-GPU jobs
that did not fit may share a GPU (`gpu_sharing`), each with half its ideal demand, else half the
lowered one.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from stretto.core.colocation import CoLocationTable
from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.gpu_sharing import GpuSharing, GpuSharingArgs, colocation_for
from stretto.core.packers.node_ledger import EPS, NodeLedger
from stretto.core.packers.ordered_placement import place_in_order
from stretto.core.packers.slack_top_up import top_up_new_workers
from stretto.core.packers.synergy_greedy import place_ideally
from stretto.core.packers.worker_demand import exceeds_proportional, ideal_demand, lowered_demand, proportional_demand
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "synergy-tune"
NO_ROOM = "no node set has room even after reverting peers to their proportional share"


class SynergyTuneArgs(GpuSharingArgs):
    top_up: bool = Field(
        True, description="where workers cannot move: new workers take the slack the placed round left, up to "
        "their ideal (stretto.core.packers.slack_top_up)"
    )


ARGS = SynergyTuneArgs


def _excess(ledger: NodeLedger, job_id: str, node: int) -> tuple[float, float]:
    c = m = 0.0
    for w in ledger.placed[job_id]:
        if w.node == node and not w.pinned:
            g = w.share
            c += max(0.0, w.cpus - ledger.cpu_per_gpu[node] * g)
            m += max(0.0, w.memory_gib - ledger.memory_per_gpu[node] * g)
    return c, m


def _revert_on_node(ledger: NodeLedger, node: int, need_cpus: float, need_memory: float) -> None:
    """Revert peers on `node` until it has `need_cpus` and `need_memory` free (or no peer is left)."""

    def walk_key(job_id: str) -> tuple[float, ...]:
        workers = ledger.placed[job_id]
        spans = len({w.node for w in workers})
        gpus = sum(w.share for w in workers)
        return (spans, -sum(w.cpus for w in workers) / gpus, -sum(w.memory_gib for w in workers) / gpus)

    def shortfall() -> tuple[float, float]:
        return (
            max(0.0, need_cpus - ledger.free_cpus[node]),
            max(0.0, need_memory - ledger.free_memory[node]),
        )

    peers = sorted(ledger.jobs_on_node[node], key=walk_key)
    for job_id in peers:
        short_c, short_m = shortfall()
        if short_c <= EPS and short_m <= EPS:
            return
        ex_c, ex_m = _excess(ledger, job_id, node)
        if (short_c > EPS and ex_c + EPS >= short_c) or (short_m > EPS and ex_m + EPS >= short_m):
            ledger.shrink(job_id, cpus_per_gpu=ledger.cpu_per_gpu, memory_per_gpu=ledger.memory_per_gpu)
    # Synergy's guarantee: if the walk did not cover the shortfall, every peer goes to proportional.
    short_c, short_m = shortfall()
    if short_c > EPS or short_m > EPS:
        for job_id in peers:
            ledger.shrink(job_id, cpus_per_gpu=ledger.cpu_per_gpu, memory_per_gpu=ledger.memory_per_gpu)


def reserved_demand(job: JobState, workers: int, ledger: NodeLedger) -> tuple[np.ndarray, np.ndarray]:
    """Per worker, per node: the ideal, but above the proportional share only by the node's slack.

    The slack is what the node has free beyond the proportional share of each of its free GPUs
    (CPU and memory that jobs below their share left over). A node that grants no more than that
    keeps a proportional share for every GPU still free.
    """
    ideal_c, ideal_m = ideal_demand(job, ledger)
    prop_c, prop_m = proportional_demand(job, ledger)
    slack_c = np.maximum(0.0, ledger.free_cpus - ledger.cpu_per_gpu * ledger.free_gpus) / workers
    slack_m = np.maximum(0.0, ledger.free_memory - ledger.memory_per_gpu * ledger.free_gpus) / workers
    return np.minimum(ideal_c, prop_c + slack_c), np.minimum(ideal_m, prop_m + slack_m)


def place_tuned(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    """Synergy's Tune, steps 1-4: the ideal demand, else the lowered one (reverting peers if need be)."""
    if place_ideally(job, request, ledger) is None:
        return None
    return place_lowered(job, request, ledger)


def place_reserving(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    """Where workers cannot move: step 1 grants the ideal only out of the slack (`reserved_demand`).

    A running worker keeps the CPU and memory it was created with and reverting never lowers it, so
    a worker granted the ideal out of a free GPU's share strands that GPU for the worker's life: no
    job that needs its proportional share fits beside it.
    """
    gpw = job.gpus_per_worker
    workers = request.gpus // gpw
    cpus, memory = reserved_demand(job, workers, ledger)
    plan = ledger.find(workers=workers, gpus_per_worker=gpw, cpus=cpus, memory=memory)
    if plan is not None:
        ledger.commit(job.job_id, plan, gpus_per_worker=gpw, cpus=cpus, memory=memory)
        return None
    return place_lowered(job, request, ledger)


def place_lowered(job: JobState, request: ShareRequest, ledger: NodeLedger) -> str | None:
    """Steps 2-4: the demand lowered to the proportional share, reverting peers on the job's nodes if need be."""
    gpw = job.gpus_per_worker
    workers = request.gpus // gpw
    cpus, memory = lowered_demand(job, ledger)
    # 2. Lowered to proportional where it was above.
    if exceeds_proportional(job, ledger):
        plan = ledger.find(workers=workers, gpus_per_worker=gpw, cpus=cpus, memory=memory)
        if plan is not None:
            ledger.commit(job.job_id, plan, gpus_per_worker=gpw, cpus=cpus, memory=memory)
            return None
    # 3. Revert peers on the nodes the job's GPUs will come from.
    slots = ledger.free_gpus // gpw
    single = np.flatnonzero(slots >= workers)
    if single.size:
        node = int(single[np.lexsort((single, ledger.free_gpus[single]))[0]])
        _revert_on_node(ledger, node, workers * cpus[node], workers * memory[node])
    else:
        nodes = np.flatnonzero(slots >= 1)
        left = workers
        for node in nodes[np.lexsort((nodes, ledger.free_gpus[nodes]))]:
            take = int(min(left, slots[node]))
            _revert_on_node(ledger, int(node), take * cpus[node], take * memory[node])
            left -= take
            if left == 0:
                break
    # 4. Lowered demand again; it fits unless the nodes hold peers below proportional elsewhere.
    plan = ledger.find(workers=workers, gpus_per_worker=gpw, cpus=cpus, memory=memory)
    if plan is None:
        return NO_ROOM
    ledger.commit(job.job_id, plan, gpus_per_worker=gpw, cpus=cpus, memory=memory)
    return None


class SynergyTunePacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: SynergyTuneArgs, colocation: CoLocationTable | None = None) -> None:
        self.args = args
        # The co-location model when sharing is on (the simulator runs shared jobs by the same table).
        self.colocation = (colocation or colocation_for(args)) if args.share_gpus else None

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        place = place_tuned if snapshot.workers_can_move else place_reserving
        if self.colocation is not None:
            sharing = GpuSharing.of(self.colocation, self.args, (ideal_demand, lowered_demand))
            return sharing.pack(snapshot, shares, place)
        ledger, placement = place_in_order(snapshot, shares, place)
        if snapshot.workers_can_move or not self.args.top_up:
            return placement
        top_up_new_workers(snapshot, shares, ledger)
        return Placement(ledger.allocations(), placement.unplaced)


def build(args: SynergyTuneArgs) -> SynergyTunePacker:
    return SynergyTunePacker(args)
