"""`las`: Tiresias' discretised two-dimensional least-attained-service.

Attained service is GPU-seconds. A job sits in the queue given by how many thresholds its
attained service has crossed; queues are served in order, FIFO (by arrival) inside a queue,
preempting at round boundaries. A job that has waited longer than `starvation_factor` × its
executed time is promoted back to the top queue. No thresholds gives Synergy's continuous 2D-LAS
(order by attained service); a single queue with no promotion is FIFO.

With `admit_by_gpu_count`, the policy requests only the jobs that fit the cluster's GPUs in that
order (each whole, skipping any that does not fit), as Tiresias does (and Pollux's simulator of
it). Where running workers cannot move, a packer keeps every requested job's workers first, so
only this lets a job of a higher queue preempt a running one there.
"""

from __future__ import annotations

import bisect
from types import MappingProxyType
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stretto.core.decisions import Predictions, Shares
from stretto.core.policies.rigid_requests import request_in_order
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "las"


class LasArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    queue_thresholds_gpu_s: tuple[float, ...] = Field(
        (3600.0, 36000.0),
        description="attained GPU-seconds at which a job drops to the next queue, increasing",
    )
    starvation_factor: float = Field(
        0.0, ge=0.0, description="promote a job that waited more than this × its executed time; 0 = never"
    )
    admit_by_gpu_count: bool = Field(
        False, description="request only the jobs that fit the cluster's GPUs in queue order (Tiresias' admission)"
    )

    @field_validator("queue_thresholds_gpu_s")
    @classmethod
    def _increasing(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if list(v) != sorted(v) or any(x <= 0 for x in v):
            raise ValueError("thresholds must be positive and increasing")
        return v


ARGS = LasArgs


class LasPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: LasArgs) -> None:
        self.args = args

    def _queue(self, job: JobState, now_s: float) -> int:
        if self.args.starvation_factor > 0 and job.run_seconds > 0 and job.last_run_end_s is not None:
            waited = now_s - job.last_run_end_s
            if waited > self.args.starvation_factor * job.run_seconds:
                return 0
        return bisect.bisect_right(self.args.queue_thresholds_gpu_s, job.attained_gpu_seconds)

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        if self.args.queue_thresholds_gpu_s:

            def key(j: JobState) -> tuple[float, ...]:
                return (self._queue(j, snapshot.now_s), j.arrival_s)
        else:

            def key(j: JobState) -> tuple[float, ...]:
                return (j.attained_gpu_seconds, j.arrival_s)

        ordered = sorted(snapshot.jobs, key=lambda j: (*key(j), j.job_id))
        waiting: dict[str, str] = {}
        if self.args.admit_by_gpu_count:
            free = sum(n.gpus for n in snapshot.nodes)
            admitted = []
            for job in ordered:
                if job.max_gpus <= free:
                    admitted.append(job)
                    free -= job.max_gpus
                else:
                    waiting[job.job_id] = f"needs {job.max_gpus} GPUs; {free} left after jobs of higher priority"
            ordered = admitted
        return Shares(request_in_order(ordered), waiting=MappingProxyType(waiting), policy_state=snapshot.policy_state)


def build(args: LasArgs) -> LasPolicy:
    return LasPolicy(args)
