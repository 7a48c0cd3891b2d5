"""`stretto`: fair finish times that anticipate adaptation, sized for the resources a job will get.

Shockwave showed that three things win on adaptive workloads: forecasting remaining time across
batch-size regimes, keeping the longest jobs running (the makespan) and serving jobs that are
about to miss their fair finish time first. Synergy showed that CPU and memory per GPU change a
job's speed. This policy combines them:

1. Forecast: R̂_j from the round's predictor (pair with `bayesian-regime`). With
   `resource_aware`, the remaining time at the job's ideal CPU and memory (Synergy's profile),
   which is what a sensitivity-aware packer (`synergy-tune`, the intended pairing) gives it when
   there is room; fair finish times, the market's utilities and the makespan term all use it,
   so a job that speeds up with CPU is not planned as if it were slow.
2. Plan (`planner="market"`, default): Shockwave's window market (`shockwave`, `fisher_market`)
   as the LP relaxation solved by GLOP: N variables, milliseconds per plan, cost bounded by
   `time_limit_s` with a greedy fallback — no MILP.
3. Order: jobs planned for (nearly) every round, then jobs the plan lets finish in the window
   (fewest rounds first), then late jobs by priority; then every other job, longest remaining
   first, so the packer fills every GPU it can (work conservation).

`planner="heuristic"` replaces the market by three classes computed in O(N log N) (makespan
tail within `tail_window_s` of the longest R̂; urgent jobs by projected ρ̂; the rest by least
remaining GPU-work, SRPT): cheaper, better average JCT, but it serves fairness worse under
overload (see the ablation in `bench/bench_adaptation.py`), so it is not the default.

Not done: fractional GPUs (two jobs sharing a GPU) need co-location throughputs in the job model
and in the simulator; this policy always asks for whole GPUs.
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.policies.finish_time_estimates import record_estimate, smoothed_finish_time
from stretto.core.policies.shockwave import ShockwaveArgs, ShockwavePolicy
from stretto.core.snapshots import ClusterSnapshot

NAME = "stretto"


class StrettoArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    planner: Literal["market", "heuristic"] = Field("market", description="window market (LP) or O(N log N) classes")
    market: ShockwaveArgs = Field(default_factory=lambda: ShockwaveArgs(time_limit_s=0.25))
    tail_window_s: float = Field(2400.0, ge=0, description="jobs within this of the longest R̂ run every round")
    urgent_window_s: float = Field(2400.0, description="laxity below which a job is urgent (EDF)")
    rho_max: float = Field(1.0, gt=0, description="finish-time-fairness target")
    stickiness: float = Field(0.2, ge=0, description="a running job's remaining work counts (1 - this)")
    resource_aware: bool = Field(True, description="rank by remaining time at the ideal CPU/memory")
    makespan_tail: bool = Field(True, description="ablation: class a on/off")
    fairness: bool = Field(True, description="ablation: class b on/off")


ARGS = StrettoArgs


class StrettoPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: StrettoArgs) -> None:
        self.args = args
        self._market = ShockwavePolicy(args.market)

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        if self.args.resource_aware:
            predictions = at_ideal_resources(predictions)
        if self.args.planner == "market":
            return self._market.share(snapshot, predictions)
        return self._heuristic(snapshot, predictions)

    def _heuristic(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        a = self.args
        jobs = snapshot.jobs
        if not jobs:
            return Shares((), policy_state={"fair_finish": {}, "job_ids": []})
        state = snapshot.policy_state
        ids = [j.job_id for j in jobs]
        series: dict[str, list[float]] = {k: v for k, v in state.get("fair_finish", {}).items() if k in set(ids)}
        share = min(1.0, snapshot.total_gpus / len(jobs))
        changed = sorted(state.get("job_ids", [])) != sorted(ids)
        now = snapshot.now_s
        remaining = {j.job_id: predictions[j.job_id].remaining_seconds for j in jobs}
        for job in jobs:
            if changed or job.job_id not in series:
                p = predictions[job.job_id]
                estimate = job.arrival_s + p.isolated_seconds / share
                series[job.job_id] = record_estimate(series.get(job.job_id), now, estimate)
        longest = max(remaining.values())
        ranked = []
        for i, job in enumerate(jobs):
            r = remaining[job.job_id]
            fair = smoothed_finish_time(series[job.job_id], now)
            laxity = a.rho_max * fair - now - r
            projected_rho = (now + r - job.arrival_s) / max(fair - job.arrival_s, 1e-9)
            if a.makespan_tail and r >= longest - a.tail_window_s:
                ranked.append((0, -r, i, job))
            elif a.fairness and laxity < a.urgent_window_s:
                ranked.append((1, -projected_rho, i, job))
            else:
                sticky = (1.0 - a.stickiness) if job.job_id in snapshot.previous else 1.0
                ranked.append((2, r * job.max_gpus * sticky, i, job))
        ranked.sort(key=lambda e: e[:3])
        requests = tuple(ShareRequest(e[3].job_id, e[3].max_gpus) for e in ranked)
        return Shares(requests, policy_state={"fair_finish": series, "job_ids": ids})


def at_ideal_resources(predictions: Predictions) -> Predictions:
    """Predictions whose remaining (and isolated) times assume the job's ideal CPU and memory."""
    out = {}
    for job_id, p in predictions.jobs.items():
        faster = p.remaining_seconds - p.remaining_seconds_ideal
        out[job_id] = replace(
            p, remaining_seconds=p.remaining_seconds_ideal, isolated_seconds=max(0.0, p.isolated_seconds - faster)
        )
    return Predictions(MappingProxyType(out))


def build(args: StrettoArgs) -> StrettoPolicy:
    return StrettoPolicy(args)
