"""The `stretto` policy: small cases checked by hand, resource awareness, determinism."""

from __future__ import annotations

import pytest

from stretto.core.builders import CPU_HUNGRY, DEFAULT_PROFILE, make_job, make_nodes, make_profile, make_snapshot
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
    # the static-contention classes treat a job past its deadline as lost (Moore–Hodgson), so the
    # heuristic is checked with Shockwave's smoothed 1/N target, under which "short" is late
    extra = {"fair_target": "smoothed", "rho_max": 1.0} if planner == "heuristic" else {}
    decision = _round(jobs, make_nodes(1, gpus=2), planner=planner, **extra)
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


def _on(node: str, gpus: int, cpus_per_gpu: float, memory_per_gpu: float, first: int = 0):
    from stretto.core.snapshots import WorkerPlacement

    return tuple(WorkerPlacement(node, (first + i,), cpus_per_gpu, memory_per_gpu) for i in range(gpus))


def test_delivered_share_is_the_speed_up_the_packer_gave_over_the_ideal() -> None:
    # CPU_HUNGRY: ideal 6 CPUs/100 GiB per GPU for ×2. h1 (1 GPU) got its ideal: +1 of +1;
    # h2 (2 GPUs) got the proportional 3 CPUs/50 GiB: +0 of +2; p has no sensitivity.
    # delivered = (1·1 + 2·0) / (1·1 + 2·1) = 1/3; smoothed with the prior 0.5 at weight 0.5: 5/12.
    from stretto.core.policies.stretto import delivered_share
    from stretto.core.snapshots import JobAllocation

    hungry = make_profile("hungry", sensitivity=CPU_HUNGRY)
    jobs = [
        make_job("h1", profile=hungry, samples=50_000.0),
        make_job("h2", gpus=2, profile=hungry, samples=50_000.0),
        make_job("p", samples=50_000.0),
    ]
    previous = {
        "h1": JobAllocation("h1", _on("node-0", 1, 6.0, 100.0)),
        "h2": JobAllocation("h2", _on("node-0", 2, 3.0, 50.0, first=1)),
        "p": JobAllocation("p", _on("node-0", 1, 3.0, 50.0, first=3)),
    }
    nodes = make_nodes(1, gpus=4, cpus=12.0, memory_gib=200.0)
    snap = make_snapshot(jobs, nodes=nodes, now_s=600.0, round_seconds=120.0, previous=previous, round_index=5)
    assert delivered_share(snap) == pytest.approx(1 / 3)
    assert delivered_share(make_snapshot(jobs, nodes=nodes)) is None  # nothing ran yet
    from stretto.core.predictors.bayesian_regime import BayesianRegimeArgs, BayesianRegimePredictor

    predictions = BayesianRegimePredictor(BayesianRegimeArgs()).predict(snap)
    shares = StrettoPolicy(StrettoArgs()).share(snap, predictions)
    assert shares.policy_state["delivered"] == pytest.approx(5 / 12)
    # per job (`delivered_per_job`): each running sensitive job's own share, smoothed from the cluster's
    per_job = shares.policy_state["delivered_jobs"]
    assert per_job == {"h1": pytest.approx(17 / 24), "h2": pytest.approx(5 / 24)}


def test_partial_speed_up_interpolates_between_proportional_and_ideal() -> None:
    p = JobPrediction("x", 10.0, remaining_seconds=100.0, remaining_seconds_ideal=60.0, isolated_seconds=150.0)
    q = at_ideal_resources(Predictions({"x": p}), fraction=0.25)["x"]
    assert (q.remaining_seconds, q.isolated_seconds) == (90.0, 140.0)
    r = at_ideal_resources(Predictions({"x": p}), fraction=0.0)["x"]
    assert (r.remaining_seconds, r.isolated_seconds) == (100.0, 150.0)


def test_nothing_delivered_plans_exactly_as_shockwave() -> None:
    # Under the `proportional` packer no job gets more than its share: delivered = 0, so the market
    # planner's request order is shockwave's although its jobs are CPU-sensitive.
    from stretto.core.policies.shockwave import ShockwavePolicy
    from stretto.core.predictors.bayesian_regime import BayesianRegimeArgs, BayesianRegimePredictor
    from stretto.core.snapshots import JobAllocation

    hungry = make_profile("hungry", sensitivity=CPU_HUNGRY)
    jobs = [
        make_job(f"j{i}", arrival_s=20.0 * i, samples=40_000.0 * (i + 1), profile=hungry if i % 2 else DEFAULT_PROFILE)
        for i in range(6)
    ]
    previous = {"j1": JobAllocation("j1", _on("node-0", 1, 3.0, 50.0))}
    snap = make_snapshot(
        jobs,
        nodes=make_nodes(1, gpus=3, cpus=9.0, memory_gib=150.0),
        now_s=600.0,
        round_seconds=120.0,
        previous=previous,
        policy_state={"delivered": 0.0},
        round_index=5,
    )
    predictions = BayesianRegimePredictor(BayesianRegimeArgs()).predict(snap)
    stretto = StrettoPolicy(StrettoArgs(planner="market")).share(snap, predictions)
    shockwave = ShockwavePolicy(StrettoArgs().market).share(snap, predictions)
    assert stretto.policy_state["delivered"] == 0.0
    assert stretto.requests == shockwave.requests


def test_calibration_by_measured_speed_is_undone_for_sensitive_jobs() -> None:
    # The predictor scaled the hungry job by 0.4 (it ran faster thanks to its CPUs): the policy
    # plans it at the profile's proportional speed again; an insensitive job keeps its forecast.
    from stretto.core.policies.stretto import without_speedup_calibration

    hungry = make_profile("hungry", sensitivity=CPU_HUNGRY)
    jobs = [
        make_job("h", profile=hungry, samples=100_000.0, done=50_000.0),
        make_job("p", samples=100_000.0, done=50_000.0),
    ]
    snap = make_snapshot(jobs, nodes=make_nodes(1, gpus=2), now_s=600.0, round_seconds=120.0)
    scaled = {
        j: JobPrediction(j, 50_000.0, 200.0, 100.0, 400.0, remaining_epochs_by_batch_size={32: 0.5}) for j in ("h", "p")
    }
    out = without_speedup_calibration(snap, Predictions(scaled))
    h = out["h"]
    assert (h.remaining_seconds, h.remaining_seconds_ideal, h.isolated_seconds) == pytest.approx((500.0, 250.0, 1000.0))
    assert out["p"] == scaled["p"]


def test_a_job_about_to_finish_runs_right_after_the_tail() -> None:
    # 3 GPUs, nobody urgent: "long" is the tail; "nearly" (2 GPUs, 100 s left, 200 GPU-s) finishes
    # within the round, so it runs before "small" (1 GPU, 150 s, less GPU-work) and "mid".
    jobs = [
        make_job("long", arrival_s=590.0, samples=5_000_000.0),
        make_job("nearly", gpus=2, arrival_s=595.0, samples=20_000.0),
        make_job("small", arrival_s=595.0, samples=15_000.0),
        make_job("mid", arrival_s=595.0, samples=30_000.0),
    ]
    nodes = make_nodes(1, gpus=3)
    decision = _round(jobs, nodes, planner="heuristic", fairness=False)
    assert set(decision.allocations) == {"long", "nearly"}
    srpt = _round(jobs, nodes, planner="heuristic", fairness=False, finish_rounds=0.0)
    assert set(srpt.allocations) == {"long", "small", "mid"}


def test_makespan_tail_is_measured_from_the_work_bound() -> None:
    # 2 GPUs, six 3M-sample jobs and one 5M-sample job: the GPU-work per GPU (11.5M samples' worth)
    # bounds the makespan far above the longest job, so "long" can wait and SRPT takes both GPUs;
    # measured from the longest job alone (the old tail), "long" holds a GPU every round.
    jobs = [make_job("long", arrival_s=590.0, samples=5_000_000.0)]
    jobs += [make_job(f"m{i}", arrival_s=595.0, samples=3_000_000.0) for i in range(6)]
    nodes = make_nodes(1, gpus=2)
    decision = _round(jobs, nodes, planner="heuristic", fairness=False)
    assert "long" not in decision.allocations and len(decision.allocations) == 2
    old = _round(jobs, nodes, planner="heuristic", fairness=False, tail_bound="longest")
    assert "long" in old.allocations
