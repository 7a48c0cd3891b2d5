"""`elastic`: every job its minimum first, then the idle GPUs to grow jobs towards their maximum.

The rule of the seeds' Elastic-KubeFlow, as a policy. Jobs are admitted at their minimum in
arrival order while the minimums fit (a job whose minimum does not fit waits, and so do the jobs
behind it, so a large gang is not starved by a stream of small ones). The GPUs left over are then
handed out one worker at a time to the admitted job with the least extra GPU-share per unit of
weight, up to its maximum. So a job alone grows to its maximum, and when another job arrives and
waits, the grown jobs shrink back towards their minimums to admit it: scale up when GPUs sit idle,
scale down when others wait. Minimums are never taken from a running job to admit a newer one.
"""

from __future__ import annotations

import heapq
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "elastic"


class ElasticArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = ElasticArgs


def _admit_minimums(jobs: list[JobState], capacity: int,
                    widest_node: int) -> tuple[list[JobState], dict[str, str], int]:
    admitted: list[JobState] = []
    waiting: dict[str, str] = {}
    free = capacity
    blocked = False
    for job in jobs:
        if job.gpus_per_worker > widest_node:  # could never run: do not let it hold up the queue
            waiting[job.job_id] = (f"a worker needs {job.gpus_per_worker} GPUs and no node has more than "
                                   f"{widest_node}")
            continue
        if not blocked and job.min_gpus <= free:
            admitted.append(job)
            free -= job.min_gpus
            continue
        blocked = True  # keep arrival order for minimums: no overtaking a waiting gang
        waiting[job.job_id] = f"waiting for {job.min_gpus} GPUs for its minimum of {job.min_workers} workers " \
                              f"({free} of {capacity} free after earlier jobs' minimums)"
    return admitted, waiting, free


def grow_with_idle_gpus(admitted: list[JobState], free: int) -> dict[str, int]:
    """GPUs per admitted job: its minimum plus whole workers handed out max-min fair by weight.

    The next worker goes to the job whose extra GPUs per unit of weight would be smallest *after*
    the grant (a divisor method), so shares converge on weight-proportional splits.
    """
    gpus = {job.job_id: job.min_gpus for job in admitted}
    heap = [((job.gpus_per_worker / job.weight, index), job) for index, job in enumerate(admitted)
            if job.max_gpus > job.min_gpus]
    heapq.heapify(heap)
    while heap and free > 0:
        (_, index), job = heapq.heappop(heap)
        if job.gpus_per_worker > free:
            continue  # this job's next worker no longer fits; smaller workers may
        gpus[job.job_id] += job.gpus_per_worker
        free -= job.gpus_per_worker
        if gpus[job.job_id] < job.max_gpus:
            extra_after_next = (gpus[job.job_id] - job.min_gpus + job.gpus_per_worker) / job.weight
            heapq.heappush(heap, ((extra_after_next, index), job))
    return gpus


class ElasticPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: ElasticArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        ordered = sorted(snapshot.jobs, key=lambda j: (j.arrival_s, j.job_id))
        widest_node = max((n.gpus for n in snapshot.nodes), default=0)
        admitted, waiting, free = _admit_minimums(ordered, snapshot.total_gpus, widest_node)
        gpus = grow_with_idle_gpus(admitted, free)
        requests = tuple(ShareRequest(job.job_id, gpus[job.job_id]) for job in admitted)
        return Shares(requests, waiting=waiting, policy_state=snapshot.policy_state)


def build(args: ElasticArgs) -> ElasticPolicy:
    return ElasticPolicy(args)
