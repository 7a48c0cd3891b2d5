"""Elastic shares in `stretto`: worker counts by marginal gains from the scaling curve, inside the priority order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.decisions import JobPrediction, Predictions
from stretto.core.policies.elastic_shares import RemainingCurve, SizingArgs, size_jobs
from stretto.core.policies.stretto import StrettoArgs, StrettoPolicy
from stretto.core.predictors.bayesian_regime import BayesianRegimeArgs, BayesianRegimePredictor
from stretto.core.profiles import ModelProfile

# Scales well at batch 256 (linear), badly at 32 (2 GPUs no faster than 1.25).
CURVED = ModelProfile(
    "curved",
    {(32, 1): 100.0, (32, 2): 125.0, (32, 4): 150.0, (256, 1): 100.0, (256, 2): 200.0, (256, 4): 400.0},
    default_batch_size=32,
)
ARGS = SizingArgs(min_efficiency=0.5, resize_cost_s=20.0, min_resize_gain=0.05)


def prediction(job, seconds: float, epochs_by_batch: dict[int, float]) -> JobPrediction:
    return JobPrediction(job.job_id, job.remaining_samples, seconds, seconds, seconds, epochs_by_batch)


def curve_of(job, epochs_by_batch, *, forecast=True):
    samples = {b: e * job.samples_per_epoch for b, e in epochs_by_batch.items()}
    from stretto.core.epoch_schedules import seconds_for

    return RemainingCurve.of(job, prediction(job, seconds_for(job.profile, samples, gpus=job.max_gpus),
                                             epochs_by_batch), forecast=forecast)


def test_the_curve_reads_the_forecast_batch_sizes():
    job = make_job("g", gpus=4, min_workers=1, samples=1000.0, profile=CURVED, samples_per_epoch=100.0)
    # 10 epochs left: 2 at batch 32, 8 at batch 256
    curve = curve_of(job, {32: 2.0, 256: 8.0})
    assert curve.seconds(1) == pytest.approx(200 / 100 + 800 / 100)
    assert curve.seconds(4) == pytest.approx(200 / 150 + 800 / 400)
    current_only = curve_of(job, {32: 2.0, 256: 8.0}, forecast=False)
    assert current_only.seconds(4) == pytest.approx(1000 / 150)


def test_the_forecast_changes_who_gets_the_spare_gpus():
    # Two jobs at batch 32 now, one GPU each at minimum, 3 GPUs: a's forecast is all batch 256 (scales
    # linearly), b's stays at 32. With the forecast the spare GPU saves a 5 s and b 2 s: a gets it. At the
    # current batch size alone they look the same and the order (b first) decides.
    a = make_job("a", gpus=3, min_workers=1, samples=1000.0, profile=CURVED, samples_per_epoch=100.0)
    b = make_job("b", gpus=3, min_workers=1, samples=1000.0, profile=CURVED, samples_per_epoch=100.0)
    fair = {"a": 10.0, "b": 10.0}
    for forecast, want in ((True, {"a": 2, "b": 1}), (False, {"a": 1, "b": 2})):
        curves = {"a": curve_of(a, {256: 10.0}, forecast=forecast), "b": curve_of(b, {32: 10.0}, forecast=forecast)}
        gpus, admitted = size_jobs([b, a], curves, capacity=3, previous_gpus={}, first=set(), boost={},
                                   fair_s=fair, args=SizingArgs(0.5, 20.0, 0.05, admit_efficient=False))
        assert admitted == ["b", "a"] and gpus == want


def test_rigid_jobs_get_their_size_or_nothing_and_minimums_come_first():
    rigid = make_job("r", gpus=4)
    elastic = make_job("e", gpus=4, min_workers=2, profile=CURVED)
    late = make_job("late", gpus=4)
    curves = {"e": curve_of(elastic, {32: 10.0})}
    gpus, admitted = size_jobs([rigid, elastic, late], curves, capacity=6, previous_gpus={}, first=set(),
                               boost={}, fair_s={}, args=ARGS)
    assert gpus == {"r": 4, "e": 2} and admitted == ["r", "e"]


def test_a_running_job_does_not_resize_for_a_small_gain():
    # Workers of 2 GPUs at batch 32: 2 → 4 GPUs takes its last 4 s to 3.3 s, less than the 20 s restart.
    job = make_job("e", gpus=4, min_workers=1, gpus_per_worker=2, samples=500.0, profile=CURVED,
                   samples_per_epoch=500.0)
    curves = {"e": curve_of(job, {32: 1.0})}
    gpus, _ = size_jobs([job], curves, capacity=4, previous_gpus={"e": 2}, first=set(), boost={}, fair_s={},
                        args=SizingArgs(0.0, 20.0, 0.05))
    assert gpus == {"e": 2}
    gpus, _ = size_jobs([job], curves, capacity=4, previous_gpus={"e": 2}, first=set(), boost={}, fair_s={},
                        args=SizingArgs(0.0, 0.0, 0.0))
    assert gpus == {"e": 4}


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 4), st.integers(0, 3), st.sampled_from([1, 2, 4]), st.booleans()),
             min_size=1, max_size=12),
    st.integers(1, 24),
    st.data(),
)
def test_sizes_are_whole_workers_in_range_and_fit_the_cluster(specs, capacity, data):
    jobs, curves, previous = [], {}, {}
    for i, (low, extra, per_worker, ran) in enumerate(specs):
        job = make_job(f"j{i}", gpus=(low + extra) * per_worker, min_workers=low, gpus_per_worker=per_worker,
                       profile=CURVED, samples=1000.0 * (i + 1), samples_per_epoch=100.0)
        jobs.append(job)
        if not job.is_rigid:
            curves[job.job_id] = curve_of(job, {32: 5.0 * (i + 1), 256: 5.0 * (i + 1)})
        if ran:
            previous[job.job_id] = data.draw(st.integers(0, job.max_gpus + 2))
    gpus, admitted = size_jobs(jobs, curves, capacity=capacity, previous_gpus=previous,
                               first={jobs[0].job_id}, boost={jobs[-1].job_id: 4.0}, fair_s={}, args=ARGS)
    assert set(gpus) == set(admitted)
    assert sum(gpus.values()) <= capacity
    for job in jobs:
        if job.job_id in gpus:
            g = gpus[job.job_id]
            assert job.min_gpus <= g <= job.max_gpus and g % job.gpus_per_worker == 0
            assert not job.is_rigid or g == job.max_gpus
    # nobody whose minimum fits in what is left is turned away
    left = capacity - sum(gpus.values())
    assert all(job.job_id in gpus or job.min_gpus > left for job in jobs)


def test_the_policy_sizes_elastic_jobs_and_keeps_rigid_ones_at_their_size():
    jobs = [make_job("rigid", gpus=2, arrival_s=0), make_job("big", gpus=8, min_workers=1, arrival_s=1),
            make_job("small", gpus=4, min_workers=1, arrival_s=2)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=8))
    predictions = BayesianRegimePredictor(BayesianRegimeArgs()).predict(snapshot)
    shares = StrettoPolicy(StrettoArgs()).share(snapshot, predictions)
    granted = {r.job_id: r.gpus for r in shares.requests}
    assert granted["rigid"] == 2 and 1 <= granted["big"] <= 8 and 1 <= granted["small"] <= 4
    assert granted["rigid"] + granted["big"] + granted["small"] == 8  # linear scaling: every GPU is used
    rigid_only = StrettoPolicy(StrettoArgs(elastic_shares=False)).share(snapshot, predictions)
    assert {r.job_id: r.gpus for r in rigid_only.requests} == {"rigid": 2, "big": 8, "small": 4}
    assert isinstance(predictions, Predictions)


# 1 → 2 GPUs: 1.5× (half of linear); 2 → 3: 1.2× (0.4 of linear): the efficient size is 2.
SUBLINEAR = ModelProfile("sublinear", {(32, 1): 100.0, (32, 2): 150.0, (32, 3): 180.0, (32, 4): 200.0},
                         default_batch_size=32)


@pytest.mark.parametrize(("tail_at_max", "expected"), [(True, {"long": 4}), (False, {"long": 2, "short": 2})])
def test_the_makespan_tail_is_sized_first_at_its_maximum(tail_at_max: bool, expected: dict[str, int]) -> None:
    # long: 1.2e6 samples, 6,000 s at 4 GPUs; short: 150,000 samples, 1,000 s at 2. Bound max(6000, 1.15 ·
    # (4 · 6000 + 2 · 1000) / 4) = 7,475 s: long is within the 30 min tail window, short is not.
    jobs = [make_job("long", gpus=4, min_workers=1, samples=1.2e6, profile=SUBLINEAR),
            make_job("short", gpus=2, min_workers=1, samples=1.5e5, profile=SUBLINEAR, arrival_s=1.0)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=4))
    predictions = BayesianRegimePredictor(BayesianRegimeArgs()).predict(snapshot)
    shares = StrettoPolicy(StrettoArgs(tail_at_max=tail_at_max)).share(snapshot, predictions)
    head = {r.job_id: r.gpus for r in shares.requests[: len(expected)]}
    assert shares.requests[0].job_id == "long" and head == expected
