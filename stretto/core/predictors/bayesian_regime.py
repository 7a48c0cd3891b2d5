"""`bayesian-regime`: remaining time from a Dirichlet posterior over batch-size regimes (Shockwave).

For an adaptive job the predictor knows the batch sizes it may use (`JobState.batch_size_options`,
from its spec) and what it has run so far (`batch_size_history`), never its future schedule
(`planned_batch_sizes` is not read). The current epoch's rest runs at the current batch size;
the epochs after it are split over the regimes by the posterior mean (`regime_posterior`), and
each regime costs its profiled epoch time. When the job's measured time departs from the profile
by more than `recalibrate_tolerance`, all durations are scaled by the measured ratio
(`throughput_calibration`). A non-adaptive job, or one that declares a single batch size, is
forecast at its current batch size, as `current-batch` does. A `goodput` job is forecast by its
goodput model at its maximum GPUs, the noise scale as it is now (`stretto.core.goodput`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core import goodput
from stretto.core.decisions import JobPrediction, Predictions
from stretto.core.epoch_schedules import samples_by_batch_size, seconds_for
from stretto.core.predictors.regime_posterior import completed_epochs_by_batch_size, expected_remaining_epochs
from stretto.core.predictors.throughput_calibration import duration_scale
from stretto.core.snapshots import AdaptationMode, ClusterSnapshot, JobState

NAME = "bayesian-regime"


class BayesianRegimeArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    recalibrate_tolerance: float = Field(
        0.4, ge=0.0, description="rescale durations past this relative error of the profile (Shockwave: 0.4)"
    )
    goodput_forecast: Literal["profile", "current"] = Field(
        "profile", description="goodput jobs: the noise scale ahead as the profile's epochs have it, or as it is now"
    )


ARGS = BayesianRegimeArgs


def remaining_samples_by_batch_size(job: JobState) -> dict[int, float]:
    """Expected samples still to run at each batch size, from the job's history and declared sizes."""
    per_epoch = job.samples_per_epoch
    remaining = job.remaining_samples
    if remaining <= 0:
        return {}
    epochs_done = job.epochs_done
    current_end = min((epochs_done + 1) * per_epoch, job.total_samples)
    out = {job.batch_size: max(0.0, current_end - job.samples_done)}
    future = max(0.0, job.total_samples - current_end)
    regimes = set(job.batch_size_options) | {job.batch_size} | {b for _, b in job.batch_size_history}
    if future <= 0:
        return out
    if job.adaptation is AdaptationMode.NONE or len(regimes) == 1:
        out[job.batch_size] += future
        return out
    completed = completed_epochs_by_batch_size(job.batch_size_history, epochs_done)
    split = expected_remaining_epochs(
        total_epochs=job.total_samples / per_epoch,
        regimes=sorted(regimes),
        completed=completed,
        remaining_epochs=future / per_epoch,
    )
    for batch, epochs in split.items():
        out[batch] = out.get(batch, 0.0) + epochs * per_epoch
    return out


def predict_goodput_job(job: JobState, forecast: goodput.Forecast = "profile") -> JobPrediction:
    """Remaining time at the goodput-best batch on the job's fastest GPU count (`goodput_forecast`'s noise)."""
    remaining_s = goodput.fastest_remaining_seconds(job, forecast)
    return JobPrediction(
        job_id=job.job_id,
        remaining_samples=job.remaining_samples,
        remaining_seconds=remaining_s,
        remaining_seconds_ideal=remaining_s,
        isolated_seconds=goodput.job_seconds(job, job.max_gpus, 0.0, job.progress_fraction, foresight=True)
        + remaining_s,
        remaining_epochs_by_batch_size=MappingProxyType(
            {job.batch_size: job.remaining_samples / job.samples_per_epoch}),
    )


def predict_job(job: JobState, *, tolerance: float, goodput_forecast: goodput.Forecast = "profile") -> JobPrediction:
    if job.goodput_adaptive:
        return predict_goodput_job(job, goodput_forecast)
    remaining = remaining_samples_by_batch_size(job)
    done = samples_by_batch_size(
        job.batch_size_history,
        samples_per_epoch=job.samples_per_epoch,
        start_sample=0.0,
        end_sample=job.samples_done,
        default_batch_size=job.batch_size,
    )
    scale = duration_scale(job, tolerance=tolerance)
    gpus = job.max_gpus
    remaining_s = seconds_for(job.profile, remaining, gpus=gpus) * scale
    sens = job.profile.sensitivity
    ideal_s = remaining_s
    if sens is not None:
        ideal_s = scale * seconds_for(
            job.profile,
            remaining,
            gpus=gpus,
            cpu_per_gpu=sens.ideal_cpu_per_gpu,
            memory_gib_per_gpu=sens.ideal_memory_gib_per_gpu,
        )
    return JobPrediction(
        job_id=job.job_id,
        remaining_samples=job.remaining_samples,
        remaining_seconds=remaining_s,
        remaining_seconds_ideal=ideal_s,
        isolated_seconds=seconds_for(job.profile, done, gpus=gpus) * scale + remaining_s,
        remaining_epochs_by_batch_size=MappingProxyType(
            {bs: n / job.samples_per_epoch for bs, n in sorted(remaining.items())}
        ),
    )


class BayesianRegimePredictor:
    name: ClassVar[str] = NAME
    oracle: ClassVar[bool] = False

    def __init__(self, args: BayesianRegimeArgs) -> None:
        self.args = args

    def predict(self, snapshot: ClusterSnapshot) -> Predictions:
        tolerance = self.args.recalibrate_tolerance
        forecast = self.args.goodput_forecast
        return Predictions({j.job_id: predict_job(j, tolerance=tolerance, goodput_forecast=forecast)
                            for j in snapshot.jobs})


def build(args: BayesianRegimeArgs) -> BayesianRegimePredictor:
    return BayesianRegimePredictor(args)
