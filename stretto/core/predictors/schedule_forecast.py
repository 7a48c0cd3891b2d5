"""The arithmetic both built-in predictors share: turn an assumed schedule into a prediction."""

from __future__ import annotations

from types import MappingProxyType

from stretto.core.decisions import JobPrediction
from stretto.core.epoch_schedules import Schedule, samples_by_batch_size, seconds_for
from stretto.core.snapshots import JobState


def forecast_job(job: JobState, schedule: Schedule) -> JobPrediction:
    common = {"samples_per_epoch": job.samples_per_epoch, "default_batch_size": job.batch_size}
    remaining = samples_by_batch_size(schedule, start_sample=job.samples_done, end_sample=job.total_samples, **common)
    whole = samples_by_batch_size(schedule, start_sample=0.0, end_sample=job.total_samples, **common)
    gpus = job.max_gpus
    sens = job.profile.sensitivity
    ideal = (
        seconds_for(
            job.profile,
            remaining,
            gpus=gpus,
            cpu_per_gpu=sens.ideal_cpu_per_gpu,
            memory_gib_per_gpu=sens.ideal_memory_gib_per_gpu,
        )
        if sens is not None
        else None
    )
    remaining_seconds = seconds_for(job.profile, remaining, gpus=gpus)
    return JobPrediction(
        job_id=job.job_id,
        remaining_samples=job.remaining_samples,
        remaining_seconds=remaining_seconds,
        remaining_seconds_ideal=remaining_seconds if ideal is None else ideal,
        isolated_seconds=seconds_for(job.profile, whole, gpus=gpus),
        remaining_epochs_by_batch_size=MappingProxyType({bs: n / job.samples_per_epoch for bs, n in remaining.items()}),
    )
