"""`optimus`: Optimus' greedy marginal gain (Peng et al., EuroSys'18), as Pollux's simulator runs it.

Every active job first gets its minimum GPUs, in arrival order, while they last. Each remaining
GPU then goes, one at a time, to the job whose remaining time falls most by one more worker:
gain = (step time on n GPUs − step time on n + 1) × remaining steps, with step time read from the
job model at the job's batch size and remaining steps its remaining samples over that batch (an
oracle of the job's length: Pollux's "Optimus+Oracle"). With `remaining="epochs"` (the default)
they are counted as Pollux's simulator counts them: the epochs after the current one, and a
single step in the last epoch (so a job ends on its minimum). Gains then hold still within an
epoch; counted from the samples done they move every round and swap GPUs between near-equal
jobs every round, each swap a restart. A job's maximum caps its count. Requests
go out smallest count first, the order Pollux's simulator places them in.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "optimus"


class OptimusArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    remaining: Literal["epochs", "samples"] = Field(
        "epochs", description="remaining work: the epochs after the current one, one step in the last (Pollux's "
        "simulator; gains hold still within an epoch), or the samples left"
    )


ARGS = OptimusArgs


def _step_seconds(job: JobState, gpus: int) -> float:
    rate = job.profile.throughput(job.batch_size, gpus)
    return job.batch_size / rate if rate > 0 else float("inf")


class OptimusPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: OptimusArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        free = sum(n.gpus for n in snapshot.nodes)
        jobs = sorted(snapshot.jobs, key=lambda j: (j.arrival_s, j.job_id))
        gpus: dict[str, int] = {}
        waiting: dict[str, str] = {}
        for job in jobs:
            if job.min_gpus <= free:
                gpus[job.job_id] = job.min_gpus
                free -= job.min_gpus
            else:
                waiting[job.job_id] = f"needs {job.min_gpus} GPUs to start; {free} left"
        by_id = {j.job_id: j for j in jobs}

        def gain(job_id: str) -> float:
            job, n = by_id[job_id], gpus[job_id]
            step = job.gpus_per_worker
            if n + step > job.max_gpus or free < step:
                return 0.0
            done = job.samples_done
            if self.args.remaining == "epochs":
                done = (math.floor(done / job.samples_per_epoch + 1e-9) + 1) * job.samples_per_epoch
            remaining_steps = max(job.total_samples - done, 0.0) / job.batch_size or 1.0
            return (_step_seconds(job, n) - _step_seconds(job, n + step)) * remaining_steps

        gains = {job_id: gain(job_id) for job_id in gpus}
        while free > 0 and gains and max(gains.values()) > 0:
            best = max(gains, key=lambda k: gains[k])  # the first of equal gains: the earliest arrival
            gpus[best] += by_id[best].gpus_per_worker
            free -= by_id[best].gpus_per_worker
            gains[best] = gain(best)
            if free <= 0:
                break
        requests = tuple(ShareRequest(job_id, n) for job_id, n in sorted(gpus.items(), key=lambda kv: kv[1]))
        return Shares(requests, waiting=waiting, policy_state=snapshot.policy_state)


def build(args: OptimusArgs) -> OptimusPolicy:
    return OptimusPolicy(args)
