"""Table tests for each policy on tiny cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.policies.themis import min_max_rho_shares
from stretto.core.policies.water_filling import water_fill
from stretto.core.registries import builtin_policies, builtin_predictors
from stretto.core.snapshots import JobAllocation, WorkerPlacement


def order(policy: str, snapshot, args=None) -> list[str]:
    predictions = builtin_predictors().build("planned-schedule").predict(snapshot)
    shares = builtin_policies().build(policy, args).share(snapshot, predictions)
    return [r.job_id for r in shares.requests]


CASES = [
    pytest.param(
        "fifo",
        None,
        [make_job("a", arrival_s=5), make_job("b", arrival_s=1), make_job("c", arrival_s=3)],
        ["b", "c", "a"],
        id="fifo-by-arrival",
    ),
    pytest.param(
        # remaining: a 1000/100 = 10 s, b 500/100 = 5 s, c (2000-1500)/100 = 5 s; tie b/c by arrival
        "srtf",
        None,
        [make_job("a"), make_job("b", samples=500), make_job("c", samples=2000, done=1500, arrival_s=1)],
        ["b", "c", "a"],
        id="srtf-by-remaining-time",
    ),
    pytest.param(
        "las",
        {"queue_thresholds_gpu_s": []},
        [make_job("a", attained_gpu_seconds=100), make_job("b"), make_job("c", attained_gpu_seconds=50)],
        ["b", "c", "a"],
        id="las-continuous",
    ),
    pytest.param(
        # a crossed the 3600 GPU-s threshold: queue 1; b and c in queue 0, FIFO inside
        "las",
        {"queue_thresholds_gpu_s": [3600]},
        [
            make_job("a", attained_gpu_seconds=4000),
            make_job("b", arrival_s=2, attained_gpu_seconds=100),
            make_job("c", arrival_s=1),
        ],
        ["c", "b", "a"],
        id="las-discretised",
    ),
    pytest.param(
        # dominant shares on 8 GPUs: 1-GPU job 1/8, 4-GPU job 1/2. t1 first (tie at 0, smaller next job),
        # then t2 (share 0 < 1/8), then t1's second job.
        "drf",
        None,
        [make_job("a1", tenant="t1"), make_job("a2", tenant="t1", arrival_s=1), make_job("b1", tenant="t2", gpus=4)],
        ["a1", "b1", "a2"],
        id="drf-progressive-filling",
    ),
    pytest.param(
        # max-min on 8 GPUs: caps 1, 4, 4 → a gets 1 GPU, b and c 3.5 each; first round priorities
        # x / (1/3) = 3, 2.625, 2.625.
        "gavel",
        None,
        [make_job("a"), make_job("b", gpus=4), make_job("c", gpus=4)],
        ["a", "b", "c"],
        id="gavel-first-round",
    ),
    pytest.param(
        # 2 free GPUs, window of all 3 (α = 1), remaining 100 s, 10 s, 50 s: the two longest go last on
        # each GPU (k = 1), the shortest first (k = 2); each GPU runs its first job: b, then c, then a.
        "allox",
        {"alpha": 1.0},
        [make_job("a", samples=10000), make_job("b"), make_job("c", samples=5000)],
        ["b", "c", "a"],
        id="allox-matching",
    ),
]


@pytest.mark.parametrize(("policy", "args", "jobs", "want"), CASES)
def test_policy_order(policy, args, jobs, want) -> None:
    nodes = make_nodes(1, gpus=2) if policy == "allox" else make_nodes(1)
    assert order(policy, make_snapshot(jobs, nodes=nodes), args) == want


def test_gavel_state_holds_the_max_min_shares() -> None:
    snapshot = make_snapshot([make_job("a"), make_job("b", gpus=4), make_job("c", gpus=4)])
    predictions = builtin_predictors().build("planned-schedule").predict(snapshot)
    state = builtin_policies().build("gavel").share(snapshot, predictions).policy_state
    assert state["allocation"] == pytest.approx({"a": 1.0, "b": 0.875, "c": 0.875})


def test_time_share_mechanism_rotates_and_holds_new_jobs_until_reset() -> None:
    policy = builtin_policies().build("gavel")
    predictor = builtin_predictors().build("planned-schedule")
    jobs = [make_job("a"), make_job("b")]
    nodes = make_nodes(1, gpus=1)
    first = make_snapshot(jobs, nodes=nodes)
    shares = policy.share(first, predictor.predict(first))
    assert [r.job_id for r in shares.requests] == ["a", "b"]
    ran = {"a": JobAllocation("a", (WorkerPlacement("n0", (0,), 3, 50),))}
    # a ran one round: b now has the higher priority; a newcomer c waits for the next reset.
    second = make_snapshot(
        [*jobs, make_job("c")], nodes=nodes, now_s=60, previous=ran, policy_state=shares.policy_state
    )
    shares = policy.share(second, predictor.predict(second))
    assert [r.job_id for r in shares.requests] == ["b", "a"]
    assert "c" in shares.waiting


def test_water_fill_matches_the_max_min_lp() -> None:
    from ortools.linear_solver import pywraplp

    caps, weights, capacity = np.array([1.0, 4.0, 4.0, 2.0]), np.array([1.0, 1.0, 2.0, 1.0]), 7.0
    got = water_fill(capacity, caps, weights)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    x = [solver.NumVar(0, c, f"x{i}") for i, c in enumerate(caps)]
    t = solver.NumVar(0, solver.infinity(), "t")
    for xi, w in zip(x, weights, strict=True):
        solver.Add(xi >= w * t)
    solver.Add(sum(x) <= capacity)
    solver.Maximize(t)
    assert solver.Solve() == pywraplp.Solver.OPTIMAL
    assert got.sum() == pytest.approx(capacity)
    assert min(got / weights) == pytest.approx(t.solution_value())


def test_themis_equalises_rho() -> None:
    x, rho = min_max_rho_shares(
        gpus=np.array([1.0, 1.0]),
        since_arrival=np.zeros(2),
        remaining=np.array([10.0, 10.0]),
        isolated_so_far=np.zeros(2),
        capacity=1.0,
    )
    assert x == pytest.approx([0.5, 0.5]) and rho == pytest.approx(1.0)
    since, remaining = np.array([10.0, 0.0]), np.array([10.0, 30.0])
    x, rho = min_max_rho_shares(
        gpus=np.array([1.0, 1.0]), since_arrival=since, remaining=remaining, isolated_so_far=np.zeros(2), capacity=1.0
    )
    rhos = (since + remaining / x) / (remaining / 0.5)
    assert x.sum() == pytest.approx(1.0)
    assert rhos == pytest.approx([rho, rho], rel=1e-6)
