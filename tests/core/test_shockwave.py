"""The volatile Fisher market and the `shockwave` policy on cases small enough to solve by hand."""

from __future__ import annotations

import random

import pytest

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.policies.finish_time_estimates import record_estimate, smoothed_finish_time
from stretto.core.policies.fisher_market import (
    MarketJob,
    greedy_plan,
    max_useful_rounds,
    piecewise_log,
    solve_market,
)
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins, run_round

COMMON = {"capacity_gpus": 1, "window_rounds": 10, "round_progress_s": 1.0}


@pytest.mark.parametrize("solver", ["GLOP", "SCIP"])
def test_two_equal_buyers_split_the_window(solver: str) -> None:
    # Two fresh jobs of 10 rounds each, one GPU, k = 0. The log approximation rises 61/unit of
    # progress on [0, .2], 3.47 on [.2, .4], 2.03 on [.4, .6]: both reach 0.4 (4 rounds each), then
    # the last 2 rounds are worth the same to either — every split with both in [4, 6] is optimal.
    jobs = [MarketJob(1, 10.0, 0.0), MarketJob(1, 10.0, 0.0)]
    plan = solve_market(jobs, makespan_weight=0.0, solver_id=solver, **COMMON)
    assert plan.status == "optimal"
    assert sum(plan.rounds) == pytest.approx(10)
    assert all(4 - 1e-6 <= n <= 6 + 1e-6 for n in plan.rounds)


def test_a_rich_buyer_takes_the_market() -> None:
    # Budget 100 vs 1: job 0's last segment (.8 → 1) is worth 100·1.12 > job 1's first (61).
    jobs = [MarketJob(1, 10.0, 0.0, weight=100.0), MarketJob(1, 10.0, 0.0)]
    plan = solve_market(jobs, makespan_weight=0.0, **COMMON)
    assert plan.rounds == pytest.approx((10, 0))


def test_makespan_penalty_feeds_the_longest_job() -> None:
    # k large: rounds go to the job with the longest remaining time until the two are level.
    jobs = [MarketJob(1, 30.0, 0.0), MarketJob(1, 22.0, 0.0)]
    plan = solve_market(jobs, makespan_weight=10.0, **COMMON)
    assert plan.rounds[0] >= 8 - 1e-6  # R: 30 − n0 and 22 − n1 with n0 + n1 = 10 → max ≥ 21, n0 ≥ 9 − …
    assert max(30 - plan.rounds[0], 22 - plan.rounds[1]) == pytest.approx(21.0)


def test_lower_bounds_are_honoured_and_plans_fit_the_window() -> None:
    jobs = [MarketJob(1, 10.0, 0.0, min_rounds=7), MarketJob(1, 10.0, 0.0, weight=50.0)]
    plan = solve_market(jobs, makespan_weight=0.0, **COMMON)
    assert plan.rounds[0] >= 7 - 1e-6 and sum(plan.rounds) <= 10 + 1e-6


def test_no_solver_falls_back_to_a_feasible_greedy_plan() -> None:
    jobs = [MarketJob(g, r, 0.0, min_rounds=m) for g, r, m in [(2, 50.0, 3), (1, 5.0, 5), (4, 100.0, 0)]]
    plan = solve_market(
        jobs, capacity_gpus=4, window_rounds=10, round_progress_s=1.0, makespan_weight=1.0, solver_id="NO_SUCH_SOLVER"
    )
    assert plan.status == "fallback"
    assert sum(g * n for g, n in zip([2, 1, 4], plan.rounds, strict=True)) <= 40
    assert plan.rounds[0] >= 3 and plan.rounds[1] == 5
    # lower bounds (6 + 5 GPU-rounds of 40), then the longest job: 7 rounds × 4 GPUs
    assert greedy_plan(jobs, capacity_gpus=4, window_rounds=10, round_progress_s=1.0) == [3, 5, 7]


def _sizable_market(seed: int, n: int) -> list[MarketJob]:
    rng = random.Random(seed)
    return [
        MarketJob(
            rng.choice([1, 2, 4, 8]),
            rng.uniform(100.0, 50_000.0),
            rng.uniform(0.0, 5_000.0),
            rng.uniform(1.0, 50.0),
            1 if rng.random() < 0.2 else 0,
        )
        for _ in range(n)
    ]


@pytest.mark.parametrize("solver", ["GLOP", "SCIP"])
def test_a_real_time_out_still_gives_a_feasible_plan(solver: str) -> None:
    # 1500 jobs, 256 GPUs, and a 1 ms limit: OR-Tools stops on its limit (no optimum), and the plan
    # is still feasible — the solver's incumbent if it has one, else the greedy fallback.
    jobs = _sizable_market(7, 1500)
    common = {"capacity_gpus": 256, "window_rounds": 20, "round_progress_s": 120.0, "makespan_weight": 1e-3}
    plan = solve_market(jobs, time_limit_s=1e-6, solver_id=solver, **common)
    assert plan.status in ("feasible", "fallback")
    assert sum(j.gpus * n for j, n in zip(jobs, plan.rounds, strict=True)) <= 256 * 20 + 1e-6
    for job, n in zip(jobs, plan.rounds, strict=True):
        cap = max_useful_rounds(job, window_rounds=20, round_progress_s=120.0)
        assert min(job.min_rounds, cap) - 1e-6 <= n <= cap + 1e-6
    if solver == "GLOP":  # the same instance with time to spare solves to optimality: the limit was what stopped it
        assert solve_market(jobs, time_limit_s=30.0, solver_id=solver, **common).status == "optimal"


def test_piecewise_log_is_a_lower_bound() -> None:
    import numpy as np

    u = np.linspace(0.01, 1.0, 50)
    assert np.all(piecewise_log(u, (0, 0.2, 0.4, 0.6, 0.8, 1.0)) <= np.log(u) + 1e-12)


def test_smoothed_finish_time_is_time_weighted() -> None:
    h = record_estimate(None, 0.0, 100.0)
    h = record_estimate(h, 30.0, 200.0)
    # 30 s at 100, 10 s at 200: average 125; 0.9·125 + 0.1·200 = 132.5
    assert smoothed_finish_time(h, 40.0) == pytest.approx(132.5)


def _round(policy: str, jobs, nodes, **kwargs):
    plugins = build_plugins(
        RoundConfig(
            predictor=PluginSpec(name="bayesian-regime"),
            policy=PluginSpec(name=policy, args=kwargs),
            packer=PluginSpec(name="proportional"),
        )
    )
    return run_round(make_snapshot(jobs, nodes=nodes, now_s=600.0, round_seconds=120.0), plugins)


def test_shockwave_runs_the_late_short_job_and_the_long_one() -> None:
    # 2 GPUs: a short job that arrived long ago (late), a long job, and a fresh medium one.
    jobs = [
        make_job("short", arrival_s=0.0, samples=20_000.0),
        make_job("long", arrival_s=500.0, samples=2_000_000.0),
        make_job("mid", arrival_s=590.0, samples=200_000.0),
    ]
    decision = _round("shockwave", jobs, make_nodes(1, gpus=2))
    assert set(decision.allocations) == {"short", "long"}
    assert "mid" in decision.waiting


def test_shockwave_is_work_conserving_and_deterministic() -> None:
    jobs = [make_job(f"j{i}", arrival_s=10.0 * i, samples=10_000.0 * (i + 1)) for i in range(6)]
    nodes = make_nodes(1, gpus=4)
    first = _round("shockwave", jobs, nodes, time_limit_s=0.001)
    second = _round("shockwave", jobs, nodes, time_limit_s=0.001)
    assert len(first.allocations) == 4
    assert first.allocations.keys() == second.allocations.keys()
    assert first.policy_state == second.policy_state
