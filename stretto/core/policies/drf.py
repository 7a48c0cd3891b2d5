"""`drf`: dominant resource fairness across owners (tenants, or jobs without one).

Progressive filling: repeatedly take the owner with the smallest weighted dominant share of
what has been requested so far this round, and request its next job (FIFO inside an owner). A
job's demand per GPU is its ideal CPU and memory (its profile's sensitivity) or, without one,
the cluster's GPU-proportional share. With one job per owner this is Synergy's DRF order.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Predictions, Shares
from stretto.core.policies.rigid_requests import request_in_order
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "drf"


class DrfArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = DrfArgs


def dominant_share(job: JobState, totals: tuple[int, float, float]) -> float:
    gpus, cpus, mem = totals
    sens = job.profile.sensitivity
    cpu_per_gpu = sens.ideal_cpu_per_gpu if sens else cpus / max(gpus, 1)
    mem_per_gpu = sens.ideal_memory_gib_per_gpu if sens else mem / max(gpus, 1)
    g = job.max_gpus
    return max(g / max(gpus, 1), g * cpu_per_gpu / max(cpus, 1e-9), g * mem_per_gpu / max(mem, 1e-9))


class DrfPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: DrfArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        totals = (snapshot.total_gpus, snapshot.total_cpus, snapshot.total_memory_gib)
        queues: dict[str, list[JobState]] = defaultdict(list)
        for job in sorted(snapshot.jobs, key=lambda j: (j.arrival_s, j.job_id)):
            queues[job.owner].append(job)
        # Heap of (owner's weighted dominant share so far, its next job's own share, arrival, owner).
        heap = [(0.0, dominant_share(q[0], totals), q[0].arrival_s, owner) for owner, q in queues.items()]
        heapq.heapify(heap)
        ordered: list[JobState] = []
        cursor = dict.fromkeys(queues, 0)
        while heap:
            share, _, _, owner = heapq.heappop(heap)
            job = queues[owner][cursor[owner]]
            ordered.append(job)
            cursor[owner] += 1
            share += dominant_share(job, totals) / job.weight
            if cursor[owner] < len(queues[owner]):
                nxt = queues[owner][cursor[owner]]
                heapq.heappush(heap, (share, dominant_share(nxt, totals), nxt.arrival_s, owner))
        return Shares(request_in_order(ordered), policy_state=snapshot.policy_state)


def build(args: DrfArgs) -> DrfPolicy:
    return DrfPolicy(args)
