"""Each TrainingJob's throughput model as the operator keeps it: the posterior in `status.jobModel`, else the prior.

One code path for every reader of "how fast is this job": the round (`job_state` takes the
posterior's `as_profile()`), the progress channel's plausibility ceiling (the posterior's upper
credible bound, so an unknown model is judged by what is known of it, not by resnet50) and its
observations (each accepted report, at the allocation the job really held, in the same status
patch as the report). The posterior lives in the job's status because what must outlive a process
is written to the API: a restarted operator or a new leader reads it back. This module keeps only a
bounded cache of profiles, as refitting every job's posterior every round would make a large
cluster's round slow.

The prior comes from spec.profile (`stretto.core.job_model.job_prior`): the built-in family when
`model` names one, else the generic data-parallel prior; idealCpusPerGpu, idealMemoryPerGpu and
speedup enter as that module documents. A stored posterior learned against another prior (the spec's
profile was edited, or an upgrade changed a built-in table) is rebuilt on the current prior from the
reports it still holds verbatim.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stretto.api.models import TrainingJob
from stretto.api.quantity import parse_bytes
from stretto.core.job_model import JobThroughputModel, ThroughputPrior, job_prior, job_profile
from stretto.core.profiles import ModelProfile, ProfileBook

log = logging.getLogger(__name__)

STATUS_FIELD = "jobModel"
SUMMARY_FIELD = "jobModelSummary"
LEARNED = "learned"  # the summary's name for a job no built-in family describes
PROFILE_CACHE_SIZE = 4096
GIB = 2**30
_OPTIONAL_PRIOR_FIELDS = ("samplesPerEpoch", "sensitivity")  # null in to_status(): a merge patch deletes them


@dataclass(frozen=True, slots=True)
class Measurement:
    """One accepted report as the job model learns it: the allocation held and the samples per second made.

    CPU or memory `None`: the pods request none, so the reference share is assumed.
    """

    gpus: int
    batch_size: int
    samples_per_second: float
    cpu_per_gpu: float | None = None
    memory_gib_per_gpu: float | None = None

    def learned_by(self, model: JobThroughputModel) -> JobThroughputModel:
        return model.observe(gpus=self.gpus, batch_size=self.batch_size, samples_per_second=self.samples_per_second,
                             cpu_per_gpu=self.cpu_per_gpu, memory_gib_per_gpu=self.memory_gib_per_gpu)


def family_of(job: TrainingJob, book: ProfileBook) -> str | None:
    """The built-in family the job names, if it names one the book has."""
    profile = job.spec.profile
    return profile.model if profile is not None and profile.model in book else None


def prior_of(job: TrainingJob, book: ProfileBook) -> ThroughputPrior:
    """The prior spec.profile declares: a family's table, or the generic curve at the job's starting batch size."""
    profile, adaptation = job.spec.profile, job.spec.adaptation
    memory = profile.ideal_memory_per_gpu if profile is not None else None
    return job_prior(
        book=book, model=profile.model if profile is not None else None,
        batch_size=adaptation.starting_batch_size if adaptation is not None else None,
        ideal_cpus_per_gpu=profile.ideal_cpus_per_gpu if profile is not None else None,
        ideal_memory_gib_per_gpu=parse_bytes(memory) / GIB if memory else None,
        speedup=profile.speedup if profile is not None else None,
        samples_per_epoch=job.spec.work.samples_per_epoch,
    )


def stored_model(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    stored = (body.get("status") or {}).get(STATUS_FIELD)
    return stored if isinstance(stored, Mapping) and stored else None


def _readable(stored: Mapping[str, Any]) -> dict[str, Any]:
    """`stored` with the prior's optional fields back as null (the API keeps no nulls a merge patch sent)."""
    prior = stored.get("prior")
    if not isinstance(prior, Mapping):
        return dict(stored)
    return {**stored, "prior": {**{name: None for name in _OPTIONAL_PRIOR_FIELDS}, **prior}}


def posterior_of(job: TrainingJob, body: Mapping[str, Any], book: ProfileBook) -> JobThroughputModel:
    """The job's posterior: from its status when one is stored and readable, else its prior."""
    fresh = JobThroughputModel(prior_of(job, book))
    stored = stored_model(body)
    if stored is None:
        return fresh
    try:
        model = JobThroughputModel.from_status(_readable(stored))
    except ValueError as err:
        log.warning("job %s/%s: status.%s is unreadable, starting from its prior: %s", job.namespace, job.name,
                    STATUS_FIELD, err)
        return fresh
    if model.to_status()["prior"] == fresh.to_status()["prior"]:
        return model
    log.info("job %s/%s: its job model was learned against another prior; relearning its last %d reports",
             job.namespace, job.name, len(model.reports))
    for report in model.reports:
        fresh = fresh.observe(gpus=report.gpus, batch_size=report.batch_size, cpu_per_gpu=report.cpu_per_gpu,
                              memory_gib_per_gpu=report.memory_gib_per_gpu,
                              samples_per_second=report.samples_per_second)
    return fresh


def profile_of(job: TrainingJob, model: JobThroughputModel) -> ModelProfile:
    """The posterior median as a profile (`job_profile`: the same table the simulator builds), at the job's spec."""
    spec = job.spec
    return job_profile(model, batch_sizes=spec.adaptation.batch_sizes if spec.adaptation is not None else (),
                       gpus_per_worker=spec.gpus_per_worker, min_workers=spec.workers.min,
                       max_workers=spec.workers.max)


def status_fields(job: TrainingJob, model: JobThroughputModel, at: Measurement, book: ProfileBook) -> dict[str, Any]:
    """`status.jobModel` and `status.jobModelSummary` (as a merge patch: nulls delete) after learning `at`."""
    estimate = model.estimate(gpus=at.gpus, batch_size=at.batch_size, cpu_per_gpu=at.cpu_per_gpu,
                              memory_gib_per_gpu=at.memory_gib_per_gpu)
    rate = estimate.samples_per_second
    return {
        STATUS_FIELD: model.to_status(),
        SUMMARY_FIELD: {"name": family_of(job, book) or LEARNED, "reports": model.observed,
                        "samplesPerSecond": round(rate, 3),
                        "uncertainty": round(100 * (estimate.high - estimate.low) / (2 * rate), 1)},
    }


class JobModels:
    """The operator's reader of job models: the built-in book and a bounded cache of the round's profiles."""

    def __init__(self, book: ProfileBook, cache_size: int = PROFILE_CACHE_SIZE) -> None:
        self.book = book
        self._cache_size = cache_size
        self._profiles: OrderedDict[str, ModelProfile] = OrderedDict()
        self._lock = threading.Lock()

    def posterior(self, job: TrainingJob, body: Mapping[str, Any]) -> JobThroughputModel:
        return posterior_of(job, body, self.book)

    def profile(self, job: TrainingJob, body: Mapping[str, Any]) -> ModelProfile:
        """The job's `as_profile()`, refitted only when its spec or its stored posterior changed."""
        spec = body.get("spec") or {}
        key = json.dumps([spec.get(name) for name in ("profile", "adaptation", "work", "workers", "gpusPerWorker")]
                         + [stored_model(body)], sort_keys=True, default=str)
        with self._lock:
            cached = self._profiles.get(key)
            if cached is not None:
                self._profiles.move_to_end(key)
                return cached
        profile = profile_of(job, self.posterior(job, body))
        with self._lock:
            self._profiles[key] = profile
            while len(self._profiles) > self._cache_size:
                self._profiles.popitem(last=False)
        return profile

    def status_fields(self, job: TrainingJob, model: JobThroughputModel, at: Measurement) -> dict[str, Any]:
        return status_fields(job, model, at, self.book)
