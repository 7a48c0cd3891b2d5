"""Shockwave's volatile Fisher market over a planning window, as an OR-Tools linear program.

Per active job j: g_j GPUs (a gang), predicted remaining time R̂_j, isolated progress done so
far D_j, a priority weight w_j and a lower bound m_j on the rounds it must get in the window (its
finish-time-fairness constraint). The market chooses n_j ∈ [m_j, min(T, ⌈R̂_j/c⌉)], the number
of the T rounds of the window in which j runs (c = seconds of progress per round), to

    maximise  (1/(N·T))·Σ_j w_j·L_j − k·z
    s.t.      Σ_j g_j·n_j ≤ G·T,   z ≥ R̂_j − c·n_j,   z ≥ 0,
              L_j ≤ y_i + s_i·(u_j − x_i) for every segment i of the breakpoints

with u_j = (D_j + c·n_j)/(D_j + R̂_j) the job's progress at the window's end and (x_i, y_i)
Shockwave's breakpoints (0, .2, …, 1) of log u (log 0 read as log 1e-6): L_j is its
piecewise-linear lower approximation of log u_j. That is the Eisenberg–Gale program (Nash social
welfare of progress, the equilibrium of a Fisher market with budgets w_j) plus the makespan
penalty on the longest remaining time.

What is approximated, and why:
* Shockwave's MILP has a binary s_{j,t} per job and round and SOS2 variables for the log. Its
  objective and constraints depend on the s_{j,t} only through n_j = Σ_t s_{j,t}, and its second
  MILP only reorders rounds with the n_j fixed; so this model plans the n_j (N variables) and
  leaves the order inside the window to the policy's round mechanism (`round_credits`). The
  per-round capacity Σ_j g_j·s_{j,t} ≤ G becomes the window total; the mechanism's greedy fill
  and work conservation absorb what that loses.
* The log is concave, so its piecewise-linear approximation needs no SOS2 binaries: the
  segments' lines bound it from above and the maximisation sits on the approximation exactly.
* By default (`GLOP`) n_j is continuous, the LP relaxation: the round mechanism realises
  fractional shares anyway (credits), and an LP of N variables solves in milliseconds. `SCIP`
  solves the integer version (n_j whole rounds), closer to Shockwave and ~20× slower.

A time-out or a solver failure never leaves a round without a plan: a feasible greedy plan
(lower bounds, then longest remaining first, the makespan term's own order) is used instead.
GLOP is deterministic, so the same inputs give the same plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

LOG_ZERO = math.log(1e-6)


@dataclass(frozen=True, slots=True)
class MarketJob:
    gpus: int
    remaining_s: float
    done_s: float
    weight: float = 1.0
    min_rounds: int = 0


@dataclass(frozen=True, slots=True)
class MarketPlan:
    rounds: tuple[float, ...]  # n_j per job, in input order (fractional from the LP)
    status: str  # "optimal", "feasible", "fallback" (solver gave nothing) or "empty"
    solve_s: float


def piecewise_log(u: np.ndarray, breakpoints: Sequence[float]) -> np.ndarray:
    """Shockwave's lower approximation of log u: linear between breakpoints, 0 from u = 1 on."""
    xs = np.asarray(breakpoints, dtype=float)
    ys = np.array([LOG_ZERO if b <= 0 else math.log(b) for b in xs])
    return np.interp(np.clip(u, xs[0], xs[-1]), xs, ys)


def max_useful_rounds(job: MarketJob, *, window_rounds: int, round_progress_s: float) -> int:
    return min(window_rounds, math.ceil(job.remaining_s / round_progress_s - 1e-9)) if job.remaining_s > 0 else 0


def greedy_plan(
    jobs: Sequence[MarketJob], *, capacity_gpus: int, window_rounds: int, round_progress_s: float
) -> list[int]:
    """Feasible plan: every lower bound (as far as capacity allows), then longest remaining first."""
    budget = capacity_gpus * window_rounds
    caps = [max_useful_rounds(j, window_rounds=window_rounds, round_progress_s=round_progress_s) for j in jobs]
    plan = [0] * len(jobs)
    order = sorted(range(len(jobs)), key=lambda i: (-jobs[i].min_rounds, -jobs[i].remaining_s, i))
    for i in order:
        take = min(jobs[i].min_rounds, caps[i], budget // jobs[i].gpus)
        plan[i] = take
        budget -= take * jobs[i].gpus
    for i in sorted(range(len(jobs)), key=lambda i: (-jobs[i].remaining_s, i)):
        take = min(caps[i] - plan[i], budget // jobs[i].gpus)
        if take > 0:
            plan[i] += take
            budget -= take * jobs[i].gpus
    return plan


def solve_market(
    jobs: Sequence[MarketJob],
    *,
    capacity_gpus: int,
    window_rounds: int,
    round_progress_s: float,
    makespan_weight: float,
    breakpoints: Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),
    time_limit_s: float = 0.5,
    solver_id: str = "GLOP",
) -> MarketPlan:
    """Solve the market with an OR-Tools linear solver: "GLOP" plans fractional rounds (the LP
    relaxation, what the round mechanism realises anyway), "SCIP" integer rounds."""
    start = time.perf_counter()
    n = len(jobs)
    if n == 0:
        return MarketPlan((), "empty", 0.0)
    hint = greedy_plan(
        jobs, capacity_gpus=capacity_gpus, window_rounds=window_rounds, round_progress_s=round_progress_s
    )
    solver = pywraplp.Solver.CreateSolver(solver_id)
    if solver is None:
        return MarketPlan(tuple(float(h) for h in hint), "fallback", time.perf_counter() - start)
    integer = solver_id != "GLOP"
    xs = np.asarray(breakpoints, dtype=float)
    ys = np.array([LOG_ZERO if b <= 0 else math.log(b) for b in xs])
    slopes = np.diff(ys) / np.diff(xs)
    worst = solver.NumVar(0.0, solver.infinity(), "max_remaining")
    counts = []
    objective = solver.Objective()
    capacity = solver.Constraint(-solver.infinity(), float(capacity_gpus * window_rounds))
    scale = 1.0 / (n * window_rounds)
    for i, job in enumerate(jobs):
        cap = max_useful_rounds(job, window_rounds=window_rounds, round_progress_s=round_progress_s)
        low = min(job.min_rounds, cap)
        count = solver.IntVar(low, cap, f"n{i}") if integer else solver.NumVar(low, cap, f"n{i}")
        capacity.SetCoefficient(count, float(job.gpus))
        total = job.done_s + job.remaining_s
        log_value = solver.NumVar(float(ys[0]), 0.0, f"L{i}")
        if total > 0:
            u0, du = job.done_s / total, round_progress_s / total  # u_j = u0 + du·n_j
            for k in range(len(slopes)):  # L ≤ y_k + slope_k·(u − x_k): the concave hull of the breakpoints
                row = solver.Constraint(-solver.infinity(), float(ys[k] + slopes[k] * (u0 - xs[k])))
                row.SetCoefficient(log_value, 1.0)
                row.SetCoefficient(count, float(-slopes[k] * du))
        # worst ≥ R̂_j − c·n_j
        row = solver.Constraint(float(job.remaining_s), solver.infinity())
        row.SetCoefficient(worst, 1.0)
        row.SetCoefficient(count, float(round_progress_s))
        objective.SetCoefficient(log_value, scale * job.weight)
        counts.append(count)
    objective.SetCoefficient(worst, -makespan_weight)
    objective.SetMaximization()
    solver.SetTimeLimit(max(1, int(time_limit_s * 1000)))
    solver.SetNumThreads(1)
    status = solver.Solve()
    if status in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
        plan = tuple(max(0.0, float(c.solution_value())) for c in counts)
        label = "optimal" if status == pywraplp.Solver.OPTIMAL else "feasible"
    else:  # infeasible lower bounds (the caller checks first), or a time-out before any solution
        plan, label = tuple(float(h) for h in hint), "fallback"
    return MarketPlan(plan, label, time.perf_counter() - start)
