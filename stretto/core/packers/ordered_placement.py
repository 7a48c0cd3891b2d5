"""The loop every packer shares: walk the requests in priority order and place what fits."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

import numpy as np

from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.node_ledger import EPS, NodeLedger
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


def place_probe(job: JobState, request: ShareRequest, ledger: NodeLedger, cpu_per_gpu: float) -> bool:
    """All the job's workers at a profiling probe's CPUs per GPU (`JobState.probe_cpus_per_gpu`), or nothing.

    Memory is the proportional share (profiling does not probe memory). CPUs above the proportional
    share come only out of a node's slack (what it has free beyond the proportional share of each
    free GPU, as `synergy_tune.reserved_demand`), so a probe never takes CPUs a free GPU's job would
    be promised. A probe is given exactly or not at all: a restart at a point the search did not ask
    for teaches it nothing it can use.
    """
    gpw = job.gpus_per_worker
    workers = request.gpus // gpw
    want = cpu_per_gpu * gpw
    slack = np.maximum(0.0, ledger.free_cpus - ledger.cpu_per_gpu * ledger.free_gpus) / workers
    cpus = np.where(want <= ledger.cpu_per_gpu * gpw + slack + EPS, want, np.inf)
    memory = ledger.memory_per_gpu * gpw
    plan = ledger.find(workers=workers, gpus_per_worker=gpw, cpus=cpus, memory=memory)
    if plan is None:
        return False
    ledger.commit(job.job_id, plan, gpus_per_worker=gpw, cpus=cpus, memory=memory)
    for worker in ledger.placed[job.job_id]:
        worker.pinned = True  # the probe's size is the measurement: no revert or top-up may change it this round
    return True


def _runs_at(job: JobState, ledger: NodeLedger, have: int, request: ShareRequest, cpu_per_gpu: float) -> bool:
    """The job keeps all the workers it is asked for, every one at `cpu_per_gpu`."""
    return have * job.gpus_per_worker == request.gpus and all(
        abs(w.cpus / w.share - cpu_per_gpu) <= 1e-6 for w in ledger.placed.get(job.job_id, []))


def _place_at_a_probe(job: JobState, request: ShareRequest, ledger: NodeLedger, have: int) -> bool:
    """The first of the job's probes it can be given, its kept workers given up; False: none (nothing changed)."""
    for cpu in job.probe_cpus_per_gpu:
        if _runs_at(job, ledger, have, request, cpu):
            return False
        before = ledger.checkpoint()
        ledger.release(job.job_id)
        if place_probe(job, request, ledger, cpu):
            return True
        ledger.restore(before)
    return False


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

    A job under profiling (`JobState.probe_cpus_per_gpu`, `stretto.core.profiling`) is first placed
    whole at the first of its probes that fits (`place_probe`), its kept workers given up: a new CPU
    size is a new worker. If none fits, or it already runs at one, the round goes on as if none was
    asked (its workers stay as they were).
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
        if job.probe_cpus_per_gpu and _place_at_a_probe(job, request, ledger, have):
            continue
        gain = request.gpus - have * job.gpus_per_worker
        if gain == 0:
            continue
        more = ShareRequest(job.job_id, gain)
        reason = gpu_shortage_reason(more, ledger) if gain > ledger.total_free_gpus else place(job, more, ledger)
        if reason is not None and have < job.min_workers:
            ledger.release(job.job_id)
            unplaced[job.job_id] = reason
    return ledger, Placement(ledger.allocations(), MappingProxyType(unplaced))
