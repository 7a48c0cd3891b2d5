"""Recalibrating a profile from what the job actually did (Shockwave's 40 % rule).

The time the job has been running is compared with the time the profile says its completed
samples should have taken (at the batch sizes it ran them with, on its GPUs, at the
GPU-proportional share). When they differ by more than `tolerance`, every future duration is
scaled by their ratio; otherwise the profile is trusted as is (restore overheads and the odd
slow round stay inside the tolerance).
"""

from __future__ import annotations

from stretto.core.epoch_schedules import samples_by_batch_size, seconds_for
from stretto.core.snapshots import JobState

MIN_RUN_SECONDS = 60.0  # below this there is too little evidence


def duration_scale(job: JobState, *, tolerance: float) -> float:
    """Measured / profiled time for the work done so far, or 1.0 within the tolerance."""
    if job.run_seconds < MIN_RUN_SECONDS or job.samples_done <= 0 or not job.batch_size_history:
        return 1.0
    done = samples_by_batch_size(
        job.batch_size_history,
        samples_per_epoch=job.samples_per_epoch,
        start_sample=0.0,
        end_sample=job.samples_done,
        default_batch_size=job.batch_size,
    )
    profiled = seconds_for(job.profile, done, gpus=job.max_gpus)
    if profiled <= 0:
        return 1.0
    ratio = job.run_seconds / profiled
    return ratio if abs(ratio - 1.0) > tolerance else 1.0
