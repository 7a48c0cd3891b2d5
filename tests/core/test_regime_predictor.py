"""The Bayesian regime predictor: posterior arithmetic by hand, no peeking at the true schedule."""

from __future__ import annotations

import dataclasses

import pytest

from stretto.core.builders import make_job, make_profile
from stretto.core.predictors.bayesian_regime import BayesianRegimeArgs, BayesianRegimePredictor, predict_job
from stretto.core.predictors.regime_posterior import completed_epochs_by_batch_size, expected_remaining_epochs
from stretto.core.profiles import ModelProfile
from stretto.core.snapshots import AdaptationMode

# 100 samples/s at batch 32, 200 at batch 64, on one GPU; 1000-sample epochs.
PROFILE = ModelProfile("two", {(32, 1): 100.0, (64, 1): 200.0}, default_batch_size=32, samples_per_epoch=1000)


def adaptive_job(**changes):
    job = make_job("a", samples=10_000.0, profile=PROFILE, samples_per_epoch=1000.0)
    base = {"adaptation": AdaptationMode.GNS, "batch_size_options": (32, 64), "batch_size": 32}
    return dataclasses.replace(job, **(base | changes))


def test_completed_epochs_counts_only_finished_epochs() -> None:
    history = ((0, 32), (3, 64), (5, 32))
    assert completed_epochs_by_batch_size(history, 7) == {32: 5, 64: 2}
    assert completed_epochs_by_batch_size(history, 4) == {32: 3, 64: 1}
    assert completed_epochs_by_batch_size((), 0) == {}


def test_prior_is_uniform_over_declared_regimes() -> None:
    # E = 10, two regimes: α = (5, 5); nothing observed: half the epochs each.
    split = expected_remaining_epochs(total_epochs=10, regimes=(32, 64), completed={}, remaining_epochs=10)
    assert split == pytest.approx({32: 5.0, 64: 5.0})


def test_posterior_after_four_epochs_at_the_small_batch() -> None:
    # α' = (5 + 4, 5) = (9, 5); E·α'/Σα' = (6.4286, 3.5714); minus the 4 seen at 32: (2.4286, 3.5714),
    # which already sums to the 6 epochs left.
    split = expected_remaining_epochs(total_epochs=10, regimes=(32, 64), completed={32: 4}, remaining_epochs=6)
    assert split[32] == pytest.approx(10 * 9 / 14 - 4)
    assert split[64] == pytest.approx(10 * 5 / 14)
    # 9 seen at 32: α' = (14, 5), 10·14/19 = 7.37 < 9 is floored at 0; the last epoch goes to 64.
    split = expected_remaining_epochs(total_epochs=10, regimes=(32, 64), completed={32: 9}, remaining_epochs=1)
    assert split == pytest.approx({64: 1.0})


def test_remaining_time_from_the_posterior() -> None:
    # 4.5 epochs done at batch 32 (history from epoch 0): the current epoch's last 500 samples at 32
    # (5 s), then 5 future epochs split by α' = (9, 5): 32 → (10·9/14 − 4) scaled, 64 → 10·5/14 scaled.
    job = adaptive_job(samples_done=4500.0, batch_size_history=((0, 32),), run_seconds=45.0)
    p = predict_job(job, tolerance=0.4)
    at32, at64 = 10 * 9 / 14 - 4, 10 * 5 / 14
    scale = 5 / (at32 + at64)
    expected = 500 / 100 + scale * at32 * 1000 / 100 + scale * at64 * 1000 / 200
    assert p.remaining_seconds == pytest.approx(expected)
    assert p.remaining_epochs_by_batch_size[64] == pytest.approx(scale * at64)
    assert p.isolated_seconds == pytest.approx(45.0 + expected)


def test_it_never_reads_the_true_schedule() -> None:
    job = adaptive_job(samples_done=2000.0, batch_size_history=((0, 32),), run_seconds=20.0)
    a = predict_job(job, tolerance=0.4)
    b = predict_job(dataclasses.replace(job, planned_batch_sizes=((0, 32), (3, 64))), tolerance=0.4)
    c = predict_job(dataclasses.replace(job, planned_batch_sizes=((0, 32),)), tolerance=0.4)
    assert a.remaining_seconds == b.remaining_seconds == c.remaining_seconds


def test_static_job_keeps_its_batch_size() -> None:
    job = dataclasses.replace(adaptive_job(), adaptation=AdaptationMode.NONE)
    assert predict_job(job, tolerance=0.4).remaining_seconds == pytest.approx(10_000 / 100)


def test_recalibrates_only_beyond_the_tolerance() -> None:
    profile = make_profile("p", samples_per_second=100.0, samples_per_epoch=1000)
    job = make_job("s", samples=10_000.0, done=2000.0, profile=profile)
    # Profile says 20 s for 2000 samples. 26 s measured (+30 %): trusted. 40 s (+100 %): scaled ×2.
    near = dataclasses.replace(job, run_seconds=26.0 * 10, samples_done=20_000.0 / 10, batch_size_history=((0, 32),))
    assert predict_job(dataclasses.replace(near, run_seconds=0.0), tolerance=0.4).remaining_seconds == 80.0
    slow = dataclasses.replace(near, total_samples=100_000.0, samples_done=20_000.0, run_seconds=400.0)
    assert predict_job(slow, tolerance=0.4).remaining_seconds == pytest.approx(80_000 / 100 * 2)
    fine = dataclasses.replace(slow, run_seconds=260.0)
    assert predict_job(fine, tolerance=0.4).remaining_seconds == pytest.approx(80_000 / 100)


def test_predictor_plugin_is_registered_and_deterministic() -> None:
    from stretto.core.builders import make_snapshot
    from stretto.core.registries import builtin_predictors

    predictor = builtin_predictors().build("bayesian-regime")
    assert isinstance(predictor, BayesianRegimePredictor)
    snap = make_snapshot([adaptive_job(samples_done=3000.0, batch_size_history=((0, 32), (2, 64)))])
    first, second = predictor.predict(snap), predictor.predict(snap)
    assert first["a"] == second["a"]
    assert BayesianRegimeArgs().recalibrate_tolerance == 0.4
