"""The loop every packer shares: walk the requests in priority order and place what fits."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.snapshots import ClusterSnapshot, JobState

# (job, request, ledger) -> None if placed (committed to the ledger), else the reason it waits
PlaceFn = Callable[[JobState, ShareRequest, NodeLedger], str | None]


def place_with_demand(job: JobState, request: ShareRequest, ledger: NodeLedger, cpus: float, memory: float,
                      no_room: str) -> str | None:
    """Place the job's workers at `cpus` and `memory` each (best fit) and commit them; else `no_room`."""
    workers = request.gpus // job.gpus_per_worker
    plan = ledger.find(workers=workers, gpus_per_worker=job.gpus_per_worker, cpus=cpus, memory=memory)
    if plan is None:
        return no_room
    ledger.commit(job.job_id, plan, gpus_per_worker=job.gpus_per_worker, cpus=cpus, memory=memory)
    return None


def gpu_shortage_reason(request: ShareRequest, ledger: NodeLedger) -> str:
    return f"needs {request.gpus} GPUs; {ledger.total_free_gpus} free after higher-priority jobs"


def invalid_request_reason(job: JobState, request: ShareRequest) -> str | None:
    if request.gpus % job.gpus_per_worker or not job.min_gpus <= request.gpus <= job.max_gpus:
        return (
            f"policy asked for {request.gpus} GPUs, outside the job's range {job.min_gpus}-{job.max_gpus} "
            f"in steps of {job.gpus_per_worker}"
        )
    return None


def valid_requests(
    snapshot: ClusterSnapshot, shares: Shares
) -> tuple[list[tuple[JobState, ShareRequest]], dict[str, str]]:
    """The policy's requests in order, the first per active job, and why each invalid one is refused."""
    jobs = {j.job_id: j for j in snapshot.jobs}
    valid: list[tuple[JobState, ShareRequest]] = []
    invalid: dict[str, str] = {}
    seen: set[str] = set()
    for request in shares.requests:
        job = jobs.get(request.job_id)
        if job is None or job.job_id in seen:
            continue
        seen.add(job.job_id)
        reason = invalid_request_reason(job, request)
        if reason is None:
            valid.append((job, request))
        else:
            invalid[job.job_id] = reason
    return valid, invalid


def place_in_order(snapshot: ClusterSnapshot, shares: Shares, place: PlaceFn) -> tuple[NodeLedger, Placement]:
    """Place the requests in priority order with `place`, each whole or not at all.

    Where workers cannot move, every requested job first keeps its running workers (up to its new
    count) where they are, and `place` then sees only the workers it gains. A job that cannot gain
    them runs on what it kept if that meets its minimum; otherwise it waits.
    """
    ledger = NodeLedger.for_snapshot(snapshot)
    valid, unplaced = valid_requests(snapshot, shares)
    kept: dict[str, int] = {}
    if not snapshot.workers_can_move:
        for job, request in valid:
            running = snapshot.previous.get(job.job_id)
            if running is not None:
                same_shape = tuple(w for w in running.workers if len(w.gpu_indices) == job.gpus_per_worker)
                kept[job.job_id] = ledger.keep(job.job_id, same_shape, request.gpus // job.gpus_per_worker)
    for job, request in valid:
        have = kept.get(job.job_id, 0)
        gain = request.gpus - have * job.gpus_per_worker
        if gain == 0:
            continue
        more = ShareRequest(job.job_id, gain)
        reason = gpu_shortage_reason(more, ledger) if gain > ledger.total_free_gpus else place(job, more, ledger)
        if reason is not None and have < job.min_workers:
            ledger.release(job.job_id)
            unplaced[job.job_id] = reason
    return ledger, Placement(ledger.allocations(), MappingProxyType(unplaced))
