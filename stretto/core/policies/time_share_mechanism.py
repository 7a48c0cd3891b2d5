"""Gavel's round mechanism: from fractional time shares to this round's job order.

Policies such as `gavel` (max-min) and `themis` compute x_j, the fraction of time job j should
hold its gang of GPUs. They recompute it only when the job set has changed and at least
`reset_interval_s` has passed since the last recomputation (Gavel's
`minimum_time_between_allocation_resets`); in between, a job that arrived after the last
recomputation waits. Each round, job j's priority is x_j divided by its fraction of the
job-time handed out since that recomputation (x_j × 1e9 before it has run); the order is by
priority, then deficit (time owed), then x_j, all descending. Every counter lives in the
explicit policy state, so an operator restart resumes where it left off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.snapshots import ClusterSnapshot

# (snapshot, predictions, policy-specific state) -> (x_j per job, new policy-specific state)
AllocateFn = Callable[[ClusterSnapshot, Predictions, Mapping[str, Any]], tuple[dict[str, float], dict[str, Any]]]

NOT_YET_ALLOCATED = "arrived after the last share computation; waits for the next one"
NEVER_RUN_BOOST = 1e9


def share_by_time_fractions(
    snapshot: ClusterSnapshot,
    predictions: Predictions,
    *,
    allocate: AllocateFn,
    reset_interval_s: float,
) -> Shares:
    state = snapshot.policy_state
    allocation: dict[str, float] = dict(state.get("allocation", {}))
    job_time: dict[str, float] = dict(state.get("job_time", {}))
    deficits: dict[str, float] = dict(state.get("deficits", {}))
    total_time = float(state.get("total_time", 0.0))
    last_reset = state.get("last_reset_s")
    known_ids: list[str] = list(state.get("job_ids", []))
    extra: dict[str, Any] = dict(state.get("extra", {}))
    half_round = snapshot.round_seconds / 2.0
    active = [j.job_id for j in snapshot.jobs]
    active_set = set(active)

    # 1. Credit last round's running time; forget finished jobs; new jobs start at half a round.
    for job_id in snapshot.previous:
        if job_id in job_time:
            job_time[job_id] += snapshot.round_seconds
            total_time += snapshot.round_seconds
    for job_id in list(job_time):
        if job_id not in active_set:
            total_time -= job_time.pop(job_id)
            deficits.pop(job_id, None)
            allocation.pop(job_id, None)
    for job_id in active:
        job_time.setdefault(job_id, half_round)

    # 2. Recompute the shares when the job set changed and the reset interval has passed.
    changed = sorted(known_ids) != sorted(active)
    interval_passed = last_reset is None or snapshot.now_s - float(last_reset) >= reset_interval_s
    if changed and interval_passed:
        elapsed = snapshot.now_s - float(last_reset) if last_reset is not None else 0.0
        for job_id in active:
            received = job_time.get(job_id, half_round) - half_round
            deficits[job_id] = deficits.get(job_id, 0.0) + allocation.get(job_id, 0.0) * elapsed - received
        job_time = dict.fromkeys(active, half_round)
        total_time = half_round * len(active)
        allocation, extra = allocate(snapshot, predictions, extra)
        last_reset = snapshot.now_s
        known_ids = active

    # 3. Priority = share / fraction received; order by (priority, deficit, share), descending.
    entries = []
    waiting: dict[str, str] = {}
    for index, job in enumerate(snapshot.jobs):
        if job.job_id not in allocation:
            waiting[job.job_id] = NOT_YET_ALLOCATED
            continue
        x = allocation[job.job_id]
        fraction = job_time[job.job_id] / total_time if total_time > 0 else 0.0
        priority = x / fraction if (x > 0 and fraction > 0) else x * NEVER_RUN_BOOST
        entries.append((-priority, -deficits.get(job.job_id, 0.0), -x, index, job))
    entries.sort(key=lambda e: e[:4])
    requests = tuple(ShareRequest(e[4].job_id, e[4].max_gpus) for e in entries)
    new_state = {
        "allocation": allocation,
        "job_time": job_time,
        "deficits": deficits,
        "total_time": total_time,
        "last_reset_s": last_reset,
        "job_ids": known_ids,
        "extra": extra,
    }
    return Shares(requests, waiting=waiting, policy_state=new_state)
