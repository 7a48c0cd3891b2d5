"""The `stretto` policy: small cases checked by hand, resource awareness, determinism."""

from __future__ import annotations

import pytest

from stretto.core.builders import CPU_HUNGRY, make_job, make_nodes, make_profile, make_snapshot
from stretto.core.decisions import JobPrediction, Predictions
from stretto.core.policies.stretto import StrettoArgs, StrettoPolicy, at_ideal_resources
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins, run_round


def _round(jobs, nodes, packer: str = "proportional", **kwargs):
    plugins = build_plugins(
        RoundConfig(
            predictor=PluginSpec(name="bayesian-regime"),
            policy=PluginSpec(name="stretto", args=kwargs),
            packer=PluginSpec(name=packer),
        )
    )
    return run_round(make_snapshot(jobs, nodes=nodes, now_s=600.0, round_seconds=120.0), plugins)


@pytest.mark.parametrize("planner", ["market", "heuristic"])
def test_late_short_job_and_longest_job_run(planner: str) -> None:
    jobs = [
        make_job("short", arrival_s=0.0, samples=20_000.0),
        make_job("long", arrival_s=500.0, samples=2_000_000.0),
        make_job("mid", arrival_s=590.0, samples=200_000.0),
    ]
    decision = _round(jobs, make_nodes(1, gpus=2), planner=planner)
    assert set(decision.allocations) == {"short", "long"}


@pytest.mark.parametrize("planner", ["market", "heuristic"])
def test_every_job_is_listed_so_gpus_are_never_left_idle(planner: str) -> None:
    jobs = [make_job(f"j{i}", arrival_s=5.0 * i, samples=5_000.0 * (i + 1)) for i in range(5)]
    decision = _round(jobs, make_nodes(1, gpus=8), planner=planner)
    assert len(decision.allocations) == 5


def test_heuristic_ranks_the_rest_by_least_remaining_work() -> None:
    # 3 GPUs: "long" is the makespan tail, nobody is late yet (now = 600 s, fresh arrivals);
    # the other GPUs go to the two smallest remaining GPU-works among a, b, c.
    jobs = [
        make_job("long", arrival_s=590.0, samples=5_000_000.0),
        make_job("a", arrival_s=595.0, samples=300_000.0),
        make_job("b", arrival_s=595.0, samples=100_000.0),
        make_job("c", arrival_s=595.0, samples=200_000.0),
    ]
    decision = _round(jobs, make_nodes(1, gpus=3), planner="heuristic", urgent_window_s=-1e9)
    assert set(decision.allocations) == {"long", "b", "c"}


def test_resource_aware_predictions_use_the_ideal_speed() -> None:
    p = JobPrediction("x", 10.0, remaining_seconds=100.0, remaining_seconds_ideal=60.0, isolated_seconds=150.0)
    q = at_ideal_resources(Predictions({"x": p}))["x"]
    assert (q.remaining_seconds, q.isolated_seconds) == (60.0, 110.0)


def test_cpu_hungry_job_gets_its_ideal_cpu_with_synergy_tune() -> None:
    hungry = make_profile("hungry", sensitivity=CPU_HUNGRY)
    jobs = [make_job("h", profile=hungry, samples=50_000.0), make_job("p", samples=50_000.0)]
    nodes = make_nodes(1, gpus=4, cpus=12.0, memory_gib=250.0)
    decision = _round(jobs, nodes, packer="synergy-tune")
    assert set(decision.allocations) == {"h", "p"}
    assert decision.allocations["h"].cpu_per_gpu > 3.0


def test_same_input_same_output() -> None:
    jobs = [make_job(f"j{i}", arrival_s=10.0 * i, samples=7_000.0 * (i + 1)) for i in range(7)]
    policy = StrettoPolicy(StrettoArgs())
    snap = make_snapshot(jobs, nodes=make_nodes(1, gpus=4), now_s=300.0, round_seconds=120.0)
    from stretto.core.predictors.bayesian_regime import BayesianRegimeArgs, BayesianRegimePredictor

    predictions = BayesianRegimePredictor(BayesianRegimeArgs()).predict(snap)
    first, second = policy.share(snap, predictions), policy.share(snap, predictions)
    assert first.requests == second.requests and first.policy_state == second.policy_state
