"""`stretto`: fair finish times that anticipate adaptation, sized for the resources a job will get.

Shockwave showed that three things win on adaptive workloads: forecasting remaining time across
batch-size regimes, keeping the longest jobs running (the makespan) and serving jobs that are
about to miss their fair finish time first. Synergy showed that CPU and memory per GPU change a
job's speed. This policy combines them:

1. Forecast: R̂_j from the round's predictor (pair with `bayesian-regime`). With
   `resource_aware`, the remaining time with the CPU/memory speed-up the packer actually
   delivers: `delivered_share` reads last round's placement (Σ g·(f − 1) / Σ g·(s − 1) over the
   sensitive jobs that ran, f the speed-up their CPUs and memory per GPU give, s the ideal one),
   smoothed across rounds, and R̂ moves that fraction of the way from the GPU-proportional time
   to the ideal-CPU/memory time (`at_ideal_resources`). Under `proportional` the share is 0 and
   `stretto` plans exactly as `shockwave`; under `synergy-tune` (the intended pairing) it is what
   CPU/memory pressure leaves, so jobs are not planned as faster than the cluster can make them.
   `resource_estimate="ideal"` plans with the full ideal speed-up (optimistic). Fair finish
   times, the market's utilities and the makespan term all use this R̂.
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

`pack_order="gain"`/`"saved"` reorders the jobs that fit this round so the packer gives spare
CPU/memory to the best speed-up per unit first; on the combined workload it made things worse
(ablation), so the default keeps the plan's order.

Not done: fractional GPUs (two jobs sharing a GPU). `ShareRequest.gpus` is an integer, the
packers place whole GPU indices, and the job model and simulator have no co-location
throughputs (Shockwave's `tacc_throughputs.json` has pairwise entries that could feed one);
this policy always asks for whole GPUs.
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
    resource_aware: bool = Field(True, description="plan with the CPU/memory speed-up the packer delivers")
    resource_estimate: Literal["delivered", "ideal"] = Field(
        "delivered", description="speed-up: the share of the ideal one the packer delivered lately, or all of it"
    )
    pack_order: Literal["plan", "gain", "saved"] = Field(
        "plan", description="order of the jobs that fit this round: the plan's, or by CPU/memory speed-up per unit"
    )
    delivered_prior: float = Field(0.5, ge=0, le=1, description="delivered share assumed before any round ran")
    delivered_smoothing: float = Field(0.5, ge=0, le=1, description="weight of the last round in the running share")
    makespan_tail: bool = Field(True, description="ablation: class a on/off")
    fairness: bool = Field(True, description="ablation: class b on/off")


ARGS = StrettoArgs


class StrettoPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: StrettoArgs) -> None:
        self.args = args
        self._market = ShockwavePolicy(args.market)

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        a = self.args
        delivered = None
        if a.resource_aware and a.resource_estimate == "ideal":
            predictions = at_ideal_resources(predictions)
        elif a.resource_aware:
            last = delivered_share(snapshot)
            delivered = float(snapshot.policy_state.get("delivered", a.delivered_prior))
            if last is not None:
                delivered = (1 - a.delivered_smoothing) * delivered + a.delivered_smoothing * last
            predictions = at_ideal_resources(predictions, fraction=delivered)
        shares = (
            self._market.share(snapshot, predictions)
            if a.planner == "market"
            else self._heuristic(snapshot, predictions)
        )
        if a.pack_order != "plan":
            shares = replace(shares, requests=order_for_packer(snapshot, predictions, shares.requests, a.pack_order))
        if delivered is None:
            return shares
        return replace(shares, policy_state={**shares.policy_state, "delivered": delivered})

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


def order_for_packer(
    snapshot: ClusterSnapshot, predictions: Predictions, requests: tuple[ShareRequest, ...], key: str
) -> tuple[ShareRequest, ...]:
    """Reorder the requests that fit the cluster's GPUs so the packer gives spare CPU/memory where it buys most.

    The jobs that run do not change (the longest prefix whose GPUs fit, kept as a set); inside it,
    jobs whose ideal is at or below the proportional share go first (they free CPU and memory),
    then sensitive jobs by speed-up per unit of extra resource, `gain` = (s − 1)/cost or `saved`
    = remaining·(1 − 1/s)/cost, cost = extra CPUs/proportional + extra memory/proportional.
    """
    total = snapshot.total_gpus
    cpu_share = sum(n.cpus for n in snapshot.nodes) / max(total, 1)
    memory_share = sum(n.memory_gib for n in snapshot.nodes) / max(total, 1)
    used = cut = 0
    for cut, r in enumerate(requests):  # noqa: B007
        if used + r.gpus > total:
            break
        used += r.gpus
    else:
        cut = len(requests)
    jobs = {j.job_id: j for j in snapshot.jobs}

    def value(r: ShareRequest) -> tuple[int, float]:
        sens = jobs[r.job_id].profile.sensitivity
        if sens is None or sens.ideal_speedup <= 1.0:
            return (0, 0.0)
        cost = (
            max(0.0, sens.ideal_cpu_per_gpu - cpu_share) / cpu_share
            + max(0.0, sens.ideal_memory_gib_per_gpu - memory_share) / memory_share
        )
        if cost <= 0:
            return (0, 0.0)
        gain = sens.ideal_speedup - 1.0
        if key == "saved":
            gain = predictions[r.job_id].remaining_seconds * (1.0 - 1.0 / sens.ideal_speedup)
        return (1, -gain / cost)

    head = sorted(requests[:cut], key=value)
    return tuple(head) + requests[cut:]


def delivered_share(snapshot: ClusterSnapshot) -> float | None:
    """How much of the ideal CPU/memory speed-up last round's placement gave the jobs still active.

    Σ g_j·(f_j − 1) / Σ g_j·(s_j − 1) over jobs that ran last round and have a sensitivity with
    ideal speed-up s_j > 1, f_j the speed-up their CPU and memory per GPU read in the profile;
    None when no such job ran. 0 under the `proportional` packer, up to 1 when every job got its ideal.
    """
    got = wanted = 0.0
    for job in snapshot.jobs:
        allocation = snapshot.previous.get(job.job_id)
        sensitivity = job.profile.sensitivity
        if allocation is None or sensitivity is None or sensitivity.ideal_speedup <= 1.0:
            continue
        factor = sensitivity.factor(allocation.cpu_per_gpu, allocation.memory_gib_per_gpu)
        got += allocation.gpus * (factor - 1.0)
        wanted += allocation.gpus * (sensitivity.ideal_speedup - 1.0)
    return None if wanted <= 0 else min(1.0, max(0.0, got / wanted))


def at_ideal_resources(predictions: Predictions, fraction: float = 1.0) -> Predictions:
    """Predictions whose remaining (and isolated) times assume `fraction` of the ideal-CPU/memory speed-up.

    `fraction` interpolates the time saved: 1 is the job's ideal CPU and memory, 0 the
    GPU-proportional share (the predictions as they are).
    """
    out = {}
    for job_id, p in predictions.jobs.items():
        faster = fraction * (p.remaining_seconds - p.remaining_seconds_ideal)
        out[job_id] = replace(
            p,
            remaining_seconds=p.remaining_seconds - faster,
            isolated_seconds=max(0.0, p.isolated_seconds - faster),
        )
    return Predictions(MappingProxyType(out))


def build(args: StrettoArgs) -> StrettoPolicy:
    return StrettoPolicy(args)
