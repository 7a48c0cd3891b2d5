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


def place_in_order(snapshot: ClusterSnapshot, shares: Shares, place: PlaceFn) -> tuple[NodeLedger, Placement]:
    ledger = NodeLedger.for_snapshot(snapshot)
    jobs = {j.job_id: j for j in snapshot.jobs}
    unplaced: dict[str, str] = {}
    for request in shares.requests:
        job = jobs.get(request.job_id)
        if job is None or request.job_id in ledger.placed:
            continue
        reason = invalid_request_reason(job, request)
        if reason is None:
            reason = (
                gpu_shortage_reason(request, ledger)
                if request.gpus > ledger.total_free_gpus
                else place(job, request, ledger)
            )
        if reason is not None:
            unplaced[job.job_id] = reason
    return ledger, Placement(ledger.allocations(), MappingProxyType(unplaced))
