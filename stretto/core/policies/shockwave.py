"""`shockwave`: Shockwave's volatile Fisher market (NSDI'23), planned with OR-Tools.

Each round where the job set changed (or every `reopt_rounds`), for the window of the next T
rounds:
1. Finish-time fairness. Each job's fair finish time F_j = arrival + (isolated progress so far +
   R̂_j)/min(1, G/N) (equal 1/N share, N active jobs, ignoring g_j as Shockwave does) is
   re-estimated and smoothed into F̄_j (`finish_time_estimates`). The constraint "window end +
   remaining after the window / share ≤ ρ_max·F̄_j" becomes a lower bound m_j on the rounds j
   gets in the window.
2. If the bounds do not fit (some m_j > T, or Σ g_j·m_j > G·T) they are dropped and jobs
   projected to miss their F̄ get priority weight w_j = ρ̂_j^λ (ρ̂_j^100 when less than a round
   is left), ρ̂_j = (now + R̂_j/share)/F̄_j, capped at `max_weight` to keep the numbers finite.
3. The market (`fisher_market`): maximise Nash social welfare of progress minus k·max remaining
   time, under the window's GPU budget, solved by OR-Tools (GLOP LP by default, SCIP for integer rounds) within
   `time_limit_s`, with a greedy fallback.
4. The plan's fractions n_j/T become this round's order (`round_credits`): late jobs by their
   priority weight first, as Shockwave's reordering MILP puts them early in the window, then by
   credits; then
   work conservation: every other job follows,
   longest predicted remaining first, so leftover GPUs go where Shockwave sends them.
R̂_j is whatever the round's predictor says; Shockwave pairs with `bayesian-regime`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.policies.finish_time_estimates import record_estimate, smoothed_finish_time
from stretto.core.policies.fisher_market import MarketJob, solve_market
from stretto.core.policies.round_credits import credit_order, update_credits
from stretto.core.snapshots import ClusterSnapshot

NAME = "shockwave"


class ShockwaveArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    window_rounds: int = Field(20, ge=1, description="planning window T in rounds (Shockwave: future_rounds = 20)")
    reopt_rounds: int = Field(8, ge=1, description="re-plan at least this often, in rounds (Shockwave: 8)")
    makespan_weight: float = Field(1e-3, ge=0, description="k, per second of the longest remaining time")
    rho_max: float = Field(1.0, gt=0, description="finish-time-fairness target ρ_max")
    fairness_exponent: float = Field(12.0, ge=0, description="λ: weight ρ̂^λ of late jobs when relaxed")
    max_weight: float = Field(1e6, ge=1, description="cap on a late job's priority weight")
    time_limit_s: float = Field(0.5, gt=0, description="solver time limit per plan, seconds")
    solver: str = Field("GLOP", pattern="^(GLOP|SCIP)$", description="OR-Tools backend: LP or integer n_j")
    stickiness: float = Field(0.25, ge=0, description="credit bonus for a job that ran last round")


ARGS = ShockwaveArgs


class ShockwavePolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: ShockwaveArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        a = self.args
        state = snapshot.policy_state
        jobs = snapshot.jobs
        ids = [j.job_id for j in jobs]
        fractions: dict[str, float] = dict(state.get("fractions", {}))
        fair_finish: dict[str, list[float]] = {k: v for k, v in state.get("fair_finish", {}).items() if k in set(ids)}
        weights: dict[str, float] = dict(state.get("log_weights", {}))
        last_plan = state.get("planned_round")
        stats: dict[str, Any] = dict(state.get("stats", {}))
        changed = sorted(state.get("job_ids", [])) != sorted(ids)
        due = last_plan is None or snapshot.round_index - int(last_plan) >= a.reopt_rounds
        if jobs and (changed or due):
            fractions, fair_finish, weights, status = self._plan(snapshot, predictions, fair_finish)
            last_plan = snapshot.round_index
            stats[status] = stats.get(status, 0) + 1
        credits = update_credits(snapshot, fractions, state.get("credits", {}))
        finishing = finishing_rounds(snapshot, predictions, fractions, a.window_rounds)
        planned = credit_order(snapshot, credits, fractions, weights, finishing, stickiness=a.stickiness)
        planned_set = set(planned)
        rest = sorted(
            (j for j in jobs if j.job_id not in planned_set),
            key=lambda j: (-predictions[j.job_id].remaining_seconds, ids.index(j.job_id)),
        )
        by_id = {j.job_id: j for j in jobs}
        requests = tuple(ShareRequest(i, by_id[i].max_gpus) for i in planned) + tuple(
            ShareRequest(j.job_id, j.max_gpus) for j in rest
        )
        new_state = {
            "fractions": {k: v for k, v in fractions.items() if k in by_id},
            "fair_finish": fair_finish,
            "log_weights": {k: v for k, v in weights.items() if k in by_id},
            "credits": credits,
            "planned_round": last_plan,
            "job_ids": ids,
            "stats": stats,
        }
        return Shares(requests, policy_state=new_state)

    def _plan(
        self, snapshot: ClusterSnapshot, predictions: Predictions, series: dict[str, list[float]]
    ) -> tuple[dict[str, float], dict[str, list[float]], dict[str, float], str]:
        a = self.args
        jobs = snapshot.jobs
        n, capacity = len(jobs), snapshot.total_gpus
        share = min(1.0, capacity / n)
        step = snapshot.round_seconds
        now = snapshot.now_s
        window_end = now + a.window_rounds * step
        market: list[MarketJob] = []
        new_series: dict[str, list[float]] = {}
        rho_hat: dict[str, float] = {}
        for job in jobs:
            p = predictions[job.job_id]
            remaining = max(0.0, p.remaining_seconds)
            done = max(0.0, p.isolated_seconds - remaining)
            estimate = job.arrival_s + (done + remaining) / share
            new_series[job.job_id] = record_estimate(series.get(job.job_id), now, estimate)
            f_bar = smoothed_finish_time(new_series[job.job_id], now)
            # window_end + (R̂ − c·n)/share ≤ ρ_max·F̄  ⇔  n ≥ (R̂ − (ρ_max·F̄ − window_end)·share)/c
            need = (remaining - (a.rho_max * f_bar - window_end) * share) / step
            low = max(0, math.ceil(need - 1e-9))
            rho_hat[job.job_id] = (now + remaining / share) / f_bar if f_bar > 0 else 1.0
            market.append(MarketJob(job.max_gpus, remaining, done, job.weight, low))
        useful = [min(a.window_rounds, math.ceil(m.remaining_s / step - 1e-9)) for m in market]
        fits = all(m.min_rounds <= a.window_rounds for m in market) and (
            sum(m.gpus * min(m.min_rounds, u) for m, u in zip(market, useful, strict=True))
            <= capacity * a.window_rounds
        )
        weights: dict[str, float] = {}
        if not fits:
            relaxed = []
            for job, m in zip(jobs, market, strict=True):
                r = rho_hat[job.job_id]
                exponent = 100.0 if m.remaining_s < step else a.fairness_exponent
                late = r > a.rho_max
                weights[job.job_id] = exponent * math.log(r) if late else 0.0  # log of the weight
                w = min(a.max_weight, math.exp(min(700.0, weights[job.job_id])))
                relaxed.append(MarketJob(m.gpus, m.remaining_s, m.done_s, m.weight * w, 0))
            market = relaxed
        plan = solve_market(
            market,
            capacity_gpus=capacity,
            window_rounds=a.window_rounds,
            round_progress_s=step,
            makespan_weight=a.makespan_weight,
            time_limit_s=a.time_limit_s,
            solver_id=a.solver,
        )
        fractions = {j.job_id: r / a.window_rounds for j, r in zip(jobs, plan.rounds, strict=True)}
        return fractions, new_series, weights, plan.status + ("" if fits else "-relaxed")


def finishing_rounds(
    snapshot: ClusterSnapshot, predictions: Predictions, fractions: dict[str, float], window_rounds: int
) -> dict[str, float]:
    """Planned rounds of the jobs whose plan covers all their predicted remaining time."""
    out = {}
    for job in snapshot.jobs:
        rounds = fractions.get(job.job_id, 0.0) * window_rounds
        needed = predictions[job.job_id].remaining_seconds / snapshot.round_seconds
        if rounds > 0 and rounds >= needed - 1e-6:
            out[job.job_id] = rounds
    return out


def build(args: ShockwaveArgs) -> ShockwavePolicy:
    return ShockwavePolicy(args)
