"""What the core believes about each job in a simulation that does not hand it the truth.

`stretto simulate` is an oracle by default: the snapshot carries each job's true profile. With
`SimulationConfig.job_model` "learned" or "learned-unknown" the core sees instead what the live
operator would: each job's throughput posterior (`stretto.core.job_model`), from its prior, fed one
report per round it ran, taken at the allocation it really held and drawn from the truth with the
emulator's kind of telemetry noise (`stretto.devcluster.training_emulator.ReportNoise`: log-normal
of mean 1, and a share of outliers log-uniform in a factor range). The truth still drives progress
and the metrics; only the snapshot's profile changes. So a bench can price learning: the gap between
a learned run and the oracle run is what not knowing a job costs the policy.

- "learned": the prior is the job's family from the profile book (the operator's case when
  `spec.profile.model` names a built-in), so only the noise can mislead it.
- "learned-unknown": the family name is hidden, the prior is the generic data-parallel curve (a
  user's "llama-finetune"), and the first reports must settle the level.

With `profiling`, a job whose CPU/memory sensitivity nobody knows is profiled as the operator will
profile it (`stretto.core.profiling.advance_profiling` after each report): the search's next CPUs per
GPU go to the packer in the snapshot, and once the knee is found it becomes the model's prior.

The profile is built by `job_profile`, the function the operator's round reads, and cached until the
job's next report, as the operator's cache keys on the stored posterior: a job that did not run
costs nothing, one that ran costs one refit.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from stretto.core.job_model import JobThroughputModel, job_prior, job_profile
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.profiling import advance_profiling
from stretto.core.report_noise import ReportNoiseModel

JobModelView = Literal["oracle", "learned", "learned-unknown"]
JOB_MODEL_VIEWS: tuple[JobModelView, ...] = ("oracle", "learned", "learned-unknown")


@dataclass(slots=True)
class LearnedJob:
    """One job's posterior, its report stream and the profile the round last read (None: refit due)."""

    model: JobThroughputModel
    rng: random.Random
    batch_sizes: tuple[int, ...]
    gpus_per_worker: int
    min_workers: int
    max_workers: int
    profile: ModelProfile | None = None
    probes: tuple[float, ...] = ()  # CPUs per GPU the profiling search asks for next round, by preference
    reports: list[tuple[int, int, float, float, float]] = field(default_factory=list)  # what it was told


class LearnedProfiles:
    """Every job's learned model in one simulation; the simulator asks `profile` and tells `observe`."""

    def __init__(self, book: ProfileBook, *, hide_family: bool, noise: ReportNoiseModel,
                 profiling: bool = False) -> None:
        self.book = book
        self.hide_family = hide_family
        self.noise = noise
        self.profiling = profiling
        self._jobs: dict[str, LearnedJob] = {}

    def add(self, job_id: str, *, model: str, batch_size: int, samples_per_epoch: float,
            batch_sizes: Iterable[int], gpus_per_worker: int, min_workers: int, max_workers: int) -> None:
        """Start a job from its prior: its family's (when known and not hidden), else the generic curve."""
        prior = job_prior(book=None if self.hide_family else self.book, model=model, batch_size=batch_size,
                          samples_per_epoch=round(samples_per_epoch))
        self._jobs[job_id] = LearnedJob(JobThroughputModel(prior), self.noise.stream(job_id), tuple(batch_sizes),
                                        gpus_per_worker, min_workers, max_workers)

    def profile(self, job_id: str) -> ModelProfile:
        """The posterior median as the round reads it; refitted only after a new report."""
        job = self._jobs[job_id]
        if job.profile is None:
            job.profile = job_profile(job.model, batch_sizes=job.batch_sizes, gpus_per_worker=job.gpus_per_worker,
                                      min_workers=job.min_workers, max_workers=job.max_workers)
        return job.profile

    def observe(self, job_id: str, *, gpus: int, batch_size: int, cpu_per_gpu: float, memory_gib_per_gpu: float,
                true_samples_per_second: float) -> float:
        """Learn one noisy report of the true rate at the allocation held; returns the reported rate."""
        job = self._jobs[job_id]
        reported = true_samples_per_second * self.noise.factor(job.rng)
        job.model = job.model.observe(gpus=gpus, batch_size=batch_size, samples_per_second=reported,
                                      cpu_per_gpu=cpu_per_gpu if cpu_per_gpu > 0 else None,
                                      memory_gib_per_gpu=memory_gib_per_gpu if memory_gib_per_gpu > 0 else None)
        if self.profiling:
            job.model, job.probes = advance_profiling(job.model)
        job.reports.append((gpus, batch_size, cpu_per_gpu, memory_gib_per_gpu, reported))
        job.profile = None
        return reported

    def probes(self, job_id: str) -> tuple[float, ...]:
        """The CPUs per GPU its profiling asks the packer for next round, by preference; () when not profiling."""
        return self._jobs[job_id].probes

    def model(self, job_id: str) -> JobThroughputModel:
        return self._jobs[job_id].model

    def reports(self, job_id: str) -> tuple[tuple[int, int, float, float, float], ...]:
        """(GPUs, batch size, CPUs per GPU, GiB per GPU, samples/s reported) for each report the job made."""
        return tuple(self._jobs[job_id].reports)
