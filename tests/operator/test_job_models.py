"""Each job's throughput model in the operator: prior from spec.profile, posterior from status.jobModel, and
the progress channel learning from each accepted report in the same status write."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from stretto.api import models as api_models
from stretto.api.models import JobModel, TrainingJob
from stretto.core import job_model as core_job_model
from stretto.core.job_model import GENERIC_SAMPLES_PER_SECOND, REFERENCE_CPU_PER_GPU, JobThroughputModel
from stretto.operator.job_models import (
    JobModels,
    Measurement,
    posterior_of,
)
from stretto.operator.progress_reports import max_plausible_throughput, measurement_of
from stretto.operator.snapshot_builder import job_state
from tests.operator.progress_fixtures import BOOK, allocation, context, job_body, report


def as_stored(model: JobThroughputModel) -> dict[str, Any]:
    """`to_status()` as the API server keeps it after a merge patch: JSON, nulls deleted."""
    def without_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_nulls(v) for k, v in value.items() if v is not None}
        return [without_nulls(v) for v in value] if isinstance(value, list) else value
    return without_nulls(json.loads(json.dumps(model.to_status())))


def with_status(body: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": status}


def learned(body: dict[str, Any], rates: list[float], *, gpus: int = 2, batch_size: int = 32) -> JobThroughputModel:
    model = JobModels(BOOK).posterior(TrainingJob.model_validate(body), body)
    for rate in rates:
        model = model.observe(gpus=gpus, batch_size=batch_size, samples_per_second=rate)
    return model


# -- the prior from spec.profile ------------------------------------------------------------------


def test_a_family_job_starts_from_the_familys_table_and_grid():
    state = job_state(with_status(job_body(model="resnet18")), BOOK)
    family = BOOK.get("resnet18")
    assert state.model == "resnet18"
    for gpus in (1, 2, 4, 8):
        assert state.profile.throughput(256, gpus) == pytest.approx(family.throughput(256, gpus), rel=1e-9)
    assert state.profile.throughput(256, 2, 12.0, 62.5) == pytest.approx(family.throughput(256, 2, 12.0, 62.5),
                                                                         rel=1e-6)


@pytest.mark.parametrize("profile", [{"model": "my-own-net"}, None], ids=["unknown name", "no profile"])
def test_an_unknown_or_missing_model_is_the_generic_prior_at_the_jobs_batch_size(profile):
    body = job_body()
    body["spec"] = {k: v for k, v in body["spec"].items() if k != "profile"} | (
        {"profile": profile} if profile else {})
    state = job_state(with_status(body), BOOK)
    assert state.model == (profile or {}).get("model", "unknown")
    assert state.profile.default_batch_size == 32
    assert state.profile.throughput(32, 1) == pytest.approx(GENERIC_SAMPLES_PER_SECOND)
    assert state.profile.throughput(32, 4) < 4 * GENERIC_SAMPLES_PER_SECOND  # sublinear, not resnet50's table
    assert state.profile.sensitivity is None  # nothing speaks about CPU or memory yet


def test_declared_ideals_and_speedup_shape_the_prior():
    body = job_body(model="my-own-net")
    body["spec"]["profile"] = {"model": "my-own-net", "idealCpusPerGpu": 12, "idealMemoryPerGpu": "125Gi",
                               "speedup": 2.0}
    profile = job_state(with_status(body), BOOK).profile
    grid = profile.sensitivity
    assert grid is not None
    assert profile.throughput(32, 1, 12.0, 125.0) / profile.throughput(32, 1, REFERENCE_CPU_PER_GPU, 62.5) \
        == pytest.approx(2.0, rel=1e-6)
    assert grid.ideal_cpu_per_gpu <= 12.0 and grid.ideal_speedup == pytest.approx(2.0, rel=0.02)
    plain = job_state(with_status(job_body(model="my-own-net")), BOOK).profile
    assert plain.throughput(32, 1) == pytest.approx(profile.throughput(32, 1))  # the level is the generic one


def test_the_profile_covers_every_batch_size_and_gpu_count_the_job_may_use():
    body = job_body(model="resnet18", batch_sizes=(32, 64, 128), workers={"min": 1, "max": 200})
    profile = job_state(with_status(body), BOOK).profile
    tabled = set(profile.samples_per_second)
    assert {(b, 1) for b in (32, 64, 128, 256)} <= tabled and (128, 200) in tabled and (128, 128) in tabled


# -- the posterior from status.jobModel -----------------------------------------------------------


def test_the_stored_posterior_is_read_back_and_used():
    body = job_body(model="my-own-net")
    model = learned(body, [1800.0, 1900.0, 1850.0])
    stored = with_status(body, jobModel=as_stored(model))
    JobModel.model_validate(stored["status"]["jobModel"])  # the pydantic status model (hence the CRD) takes it
    again = posterior_of(TrainingJob.model_validate(stored), stored, BOOK)
    assert again.to_status() == model.to_status() and again.observed == 3
    state = job_state(stored, BOOK)
    assert state.profile.throughput(32, 2) == pytest.approx(model.throughput(32, 2), rel=1e-9)
    assert state.profile.throughput(32, 2) == pytest.approx(1850.0, rel=0.05)
    assert "learned online from 3 reports" in state.profile.source


def test_an_unreadable_stored_posterior_falls_back_to_the_prior(caplog):
    body = job_body(model="my-own-net")
    broken = as_stored(learned(body, [1800.0]))
    broken["folded"]["gram"][0][1] = 5.0  # not symmetric: the CRD's schema cannot see it, from_status can
    state = job_state(with_status(body, jobModel=broken), BOOK)
    assert state.profile.throughput(32, 1) == pytest.approx(GENERIC_SAMPLES_PER_SECOND)
    assert "unreadable" in caplog.text


def test_a_posterior_learned_against_another_prior_is_relearned_from_its_reports():
    old = job_body(model="my-own-net")
    model = learned(old, [1800.0, 1900.0])
    edited = job_body(model="resnet18")  # the job's profile changed since
    again = posterior_of(TrainingJob.model_validate(edited), with_status(edited, jobModel=as_stored(model)), BOOK)
    assert again.prior.curve.model == "resnet18" and again.observed == 2
    assert [r.samples_per_second for r in again.reports] == [1800.0, 1900.0]


def test_profiles_are_cached_until_the_stored_posterior_changes():
    models = JobModels(BOOK)
    body = with_status(job_body(model="my-own-net"))
    job = TrainingJob.model_validate(body)
    first = models.profile(job, body)
    assert models.profile(job, copy.deepcopy(body)) is first
    moved = with_status(body, jobModel=as_stored(learned(body, [1500.0])))
    assert models.profile(job, moved) is not first


def test_the_api_bounds_are_the_job_models_own():
    assert api_models.JOB_MODEL_FEATURES == core_job_model.N_FEATURES
    assert api_models.JOB_MODEL_MAX_TABLE == core_job_model.MAX_TABLE_ENTRIES
    assert api_models.JOB_MODEL_MAX_GRID == core_job_model.MAX_GRID_POINTS
    assert api_models.JOB_MODEL_MAX_WINDOW == core_job_model.MAX_WINDOW
    family = learned(job_body(model="resnet18"), [2000.0] * 40)  # past the window: folded sums too
    JobModel.model_validate(as_stored(family))


# -- observations and the ceiling -----------------------------------------------------------------


def test_a_report_is_observed_at_the_allocation_the_job_really_held():
    held = allocation(workers=3, gpus_per_worker=2, cpus=4.5, memory_gib=31.25)
    ctx = context(job_body(model="my-own-net", gpusPerWorker=2), held=held)
    seen = measurement_of(report(samples_per_second=2400.0, batch_size=64), 2400.0, ctx)
    assert seen == Measurement(gpus=6, batch_size=64, samples_per_second=2400.0, cpu_per_gpu=4.5,
                               memory_gib_per_gpu=31.25)
    assert measurement_of(report(), 0.0, ctx) is None                          # no rate
    assert measurement_of(report(batch_size=1000), 900.0, ctx) is None         # a batch size the spec refuses
    assert measurement_of(report(), 900.0, context(held=allocation(workers=0))) is None  # no GPUs held
    shared = context(job_body(gpuShare={"memory": "10Gi", "maxUtilization": 50}), held=allocation(workers=1))
    assert measurement_of(report(), 400.0, shared).samples_per_second == 800.0  # per whole GPU


def test_an_unknown_models_ceiling_comes_from_its_own_model_and_tightens_as_it_learns():
    body = job_body(model="my-own-net")
    first = max_plausible_throughput(context(body), 32)
    assert first > 5 * GENERIC_SAMPLES_PER_SECOND * 2  # the generic prior knows little: a wide bound
    taught = with_status(body, jobModel=as_stored(learned(body, [900.0, 950.0, 920.0, 910.0])))
    later = max_plausible_throughput(context(taught), 32)
    assert 920.0 < later < 1.5 * 920.0
