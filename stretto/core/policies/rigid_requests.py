"""Turning an order of jobs into share requests at each job's requested (maximum) GPU count.

The paper baselines treat jobs as rigid at the GPU count they asked for; an elastic job asks
for its maximum.
"""

from __future__ import annotations

from collections.abc import Iterable

from stretto.core.decisions import ShareRequest
from stretto.core.snapshots import JobState


def request_in_order(jobs: Iterable[JobState]) -> tuple[ShareRequest, ...]:
    return tuple(ShareRequest(job.job_id, job.max_gpus) for job in jobs)
