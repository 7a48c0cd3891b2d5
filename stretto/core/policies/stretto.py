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
   to the ideal-CPU/memory time (`at_ideal_resources`). With `delivered_per_job` a job that ran
   last round uses its own smoothed share instead (the head of the order gets its ideal CPUs and
   memory, the rest much less, so one cluster-wide share mis-plans both). Under `proportional`
   the share is 0 and `stretto` plans exactly as `shockwave`; under `synergy-tune` (the intended
   pairing) it is what CPU/memory pressure leaves, so jobs are not planned as faster than the
   cluster can make them. `undo_calibration` first removes, for sensitive jobs, the predictor's
   rescaling by measured speed (Shockwave's 40 % rule, `without_speedup_calibration`): it reads
   the speed-up the packer gave a job as a profile error, so a job that ran at its ideal share
   was forecast 2.5× shorter (and its fair finish time 2.5× earlier, though ρ is measured at the
   proportional speed), and when the ratio re-entered the tolerance its R̂ jumped back by hours,
   which made it the "longest" job and evicted the real makespan tail for rounds. The speed-up
   is counted once, by the delivered share. `resource_estimate="ideal"` plans with the full
   ideal speed-up (optimistic). Fair finish times, the market's utilities and the makespan term
   all use this R̂.
2. Plan (`planner="hybrid"`, default): every round the O(N log N) classes below decide, unless
   more than `hybrid_late_share` of the active jobs cannot meet their fair finish time any more
   (sustained overload); then Shockwave's window market (`shockwave`, `fisher_market`, the LP
   relaxation solved by GLOP, milliseconds per plan, bounded by `time_limit_s` with a greedy
   fallback) orders the round, as it spreads progress evenly. The market is planned every round
   either way, so its state (fair finish times, credits) stays current.
   Classes (`planner="heuristic"` uses only these):
   a. makespan tail: jobs within `tail_window_s` (30 min) of the makespan's lower bound, longest
      first. The bound (`tail_bound="work"`) is max(longest R̂, `tail_work_factor`·Σ g·R̂ / G):
      the longest job, or all the remaining GPU-work on the G GPUs, the factor (1.15) for what
      packing leaves idle. While the work bounds the makespan the long jobs can wait, and their
      GPUs serve shorter jobs; once the longest job is the bound, the tail is the old one
      (`tail_bound="longest"`: the window below the longest R̂ alone);
   b. finishing: jobs with R̂ within `finish_rounds` rounds of done, least GPU-work first. They
      free their GPUs at once, while a job that has become "late" (below) would otherwise sit
      behind the urgent class with minutes of work left until the market took over;
   c. urgent: deadline d_j = `rho_max`·(arrival + isolated·max(1, jobs seen/G)) — the static
      contention factor of Shockwave's ρ, counted online over the jobs submitted so far, with a
      margin (`rho_max` 0.8) for forecast error; a job whose laxity d_j − now − R̂_j is below
      `urgent_rounds` rounds + `urgent_slack`·R̂_j runs first, least laxity first. Jobs that
      cannot all make their deadlines (EDF demand test: GPU-work due by d vs G·(d − now), the
      largest dropped first as in Moore–Hodgson) are "late" and not urgent: serving them would
      only make more jobs late;
   d. the rest by least remaining GPU-work (SRPT; a running job's counts 1 − `stickiness`),
      which buys average JCT.
   Why these defaults (`bench/bench_adaptation.py` section 5 prints the per-seed table and the
   ablation): the target is the best makespan and average JCT of every policy × packer pair on
   the combined workload with unfair ≤ `shockwave`'s. A tail measured from the longest R̂ alone
   held a few long jobs on many GPUs while the remaining work per GPU, not they, set the
   makespan, so medium jobs ran last (average JCT 6-17 % above allox on some seeds); the work
   bound fixes that (factors 1.1-1.2 all work; 1.3 loses makespan). Without the calibration undo
   a forecast that jumped back by hours evicted the real tail (makespan lost on two seeds);
   without the finishing class late jobs with minutes left starved behind the urgent class.
   The classes alone are unfair on Shockwave's heavily loaded 120-job trace (~17 %); the market
   alone is fair but ~30-40 % worse in average JCT on the combined workload; the fall-back to
   the market under overload buys the fairness. `planner="market"` is the market alone
   (Shockwave with the packer-aware R̂); `fair_target="smoothed"` makes class c use Shockwave's
   smoothed 1/N-share finish time instead (the earlier heuristic).
3. Order (market): jobs planned for (nearly) every round, then jobs the plan lets finish in the
   window (fewest rounds first), then late jobs by priority; then every other job, longest
   remaining first, so the packer fills every GPU it can (work conservation).

4. Elastic shares (`elastic_shares`, `stretto.core.policies.elastic_shares`): the order of 2./3. is
   kept, and each elastic job gets a worker count in [min, max] (or none) from its scaling curve at
   the batch sizes its regime forecast expects (`scaling_forecast`): admitted in order at its
   efficient size (workers while one buys `min_efficiency` of linear speed-up; the makespan tail,
   with `tail_at_max`, first and at its maximum, as far as a worker still speeds it up: at the
   efficient size the tail stretched the makespan), then spare GPUs by
   marginal time saved relative to T_fair (urgent jobs ×`urgent_boost`), a running job resizing
   only for more than `resize_cost_s` and `min_resize_gain`. Rigid jobs ask for their size as
   before. With elastic jobs present, fair finish times are the metric's own (`fair_target="auto"`
   → "lifetime": `stretto.core.fair_share` at the running lifetime contention; on all-rigid traces
   the static contention, as before), and the market takes over only while at least
   `market_rigid_share` of the jobs are rigid: it plans rigid gangs, and on elastic workloads it
   lost makespan to the classes (`bench/bench_elastic_fair.py` prints the ablation).
   A `goodput` job (Pollux's job model, `stretto.core.goodput`) is sized the same way, its R_j(g)
   at the goodput-best batch on g GPUs at today's noise scale, so its workers go by marginal
   goodput gain inside the same fairness machinery; the round then names its batch, the
   goodput-best for the GPUs it was given (`Shares.batch_sizes`).

`pack_order="gain"`/`"saved"` reorders the jobs that fit this round so the packer gives spare
CPU/memory to the best speed-up per unit first; on the combined workload it made things worse
(ablation), so the default keeps the plan's order.

Fractional GPUs are the packer's part: with `share_gpus` (`proportional`, `synergy-tune`), a
single-GPU job that does not fit pairs with a compatible one on one GPU, at the co-located speeds
of Shockwave's pair table (`stretto.core.colocation`). This policy still asks for whole GPUs; its
order decides who shares. `bench/bench_gpu_sharing.py` measures it: better average JCT under
heavy load, worse makespan (long jobs host guests), so it is off by default.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core import goodput
from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.epoch_schedules import samples_by_batch_size, seconds_for
from stretto.core.fair_share import fair_share_gpus, scaling_curve, seconds_at
from stretto.core.policies.elastic_shares import RemainingCurve, SizingArgs, efficient_size, size_jobs
from stretto.core.policies.finish_time_estimates import record_estimate, smoothed_finish_time
from stretto.core.policies.shockwave import ShockwaveArgs, ShockwavePolicy
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "stretto"


class StrettoArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    planner: Literal["market", "heuristic", "hybrid"] = Field(
        "hybrid", description="window market (LP), O(N log N) classes, or classes unless many jobs are late"
    )
    market: ShockwaveArgs = Field(default_factory=lambda: ShockwaveArgs(time_limit_s=0.25))
    tail_window_s: float = Field(1800.0, ge=0, description="jobs within this of the longest R̂ run every round")
    urgent_window_s: float = Field(2400.0, description="laxity below which a job is urgent (EDF)")
    rho_max: float = Field(0.8, gt=0, description="finish-time-fairness target of the classes (margin below 1)")
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
    undo_calibration: bool = Field(
        True, description="sensitive jobs: drop the predictor's rescaling by measured speed (the CPU/memory speed-up)"
    )
    delivered_per_job: bool = Field(True, description="a running job plans with the share it got, others the cluster's")
    fair_target: Literal["smoothed", "static", "lifetime", "elastic-lifetime", "auto"] = Field(
        "auto",
        description="heuristic's fair finish time: Shockwave's smoothed 1/N share, the static contention (jobs seen/G "
        "× isolated), T_fair of stretto.core.fair_share at the jobs' running lifetime contention (the metric's; "
        "elastic-lifetime: for elastic jobs only), or auto: lifetime while any job is elastic, else static",
    )
    urgent_rounds: float = Field(3.0, ge=0, description="static target: laxity (rounds) at which a job becomes urgent")
    urgent_slack: float = Field(0.25, ge=0, description="static target: extra laxity guard, as a fraction of R̂")
    demand_bound: float = Field(1.0, ge=0, description="late-job test: deadlines' GPU-work vs this share of the GPUs")
    market_rigid_share: float = Field(
        0.9, ge=0, le=1, description="hybrid: the market only while at least this share of the jobs is rigid"
    )
    hybrid_late_share: float = Field(0.15, ge=0, description="hybrid: market when more than this share of jobs is late")
    finish_rounds: float = Field(1.0, ge=0, description="jobs within this many rounds of done run after the tail")
    makespan_tail: bool = Field(True, description="ablation: class a on/off")
    tail_bound: Literal["longest", "work"] = Field(
        "work", description="tail window below the longest R̂, or below max(longest R̂, tail_work_factor·GPU-work/GPUs)"
    )
    tail_work_factor: float = Field(1.15, ge=0, description="work bound: remaining GPU-work/GPUs times this (packing)")
    fairness: bool = Field(True, description="ablation: class b on/off")
    elastic_shares: bool = Field(
        True, description="size elastic jobs in [min, max] workers by marginal gains (False: every job at its max)"
    )
    scaling_forecast: bool = Field(
        True, description="scaling curves at the batch sizes the regime forecast expects (False: the current one)"
    )
    min_efficiency: float = Field(0.5, ge=0, description="the tail grows while a worker buys this share of linear")
    urgent_boost: float = Field(4.0, ge=1, description="weight of an urgent job's marginal gain")
    resize_cost_s: float = Field(20.0, ge=0, description="seconds an elastic restart costs (resize_overhead_s)")
    gain_norm: Literal["fair", "remaining", "srpt"] = Field(
        "fair", description="a worker's marginal time saved is divided by the job's T_fair, its R̂, or R̂²"
    )
    admit_efficient: bool = Field(True, description="admit every job at its efficient size, not only the tail")
    tail_at_max: bool = Field(
        True, description="size the makespan tail first, at its maximum (False: at its efficient size, in order)"
    )
    min_resize_gain: float = Field(0.05, ge=0, description="a running job grows only for this share of its R̂ or more")
    goodput_forecast: Literal["profile", "current"] = Field(
        "profile", description="goodput jobs' R(g): the noise scale ahead as the profile's epochs have it, or as now"
    )


ARGS = StrettoArgs


class StrettoPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: StrettoArgs) -> None:
        self.args = args
        self._market = ShockwavePolicy(args.market)

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        a = self.args
        delivered = None
        if a.undo_calibration:
            predictions = without_speedup_calibration(snapshot, predictions)
        raw = predictions
        if a.resource_aware and a.resource_estimate == "ideal":
            predictions = at_ideal_resources(predictions)
        elif a.resource_aware:
            last = delivered_share(snapshot)
            delivered = float(snapshot.policy_state.get("delivered", a.delivered_prior))
            if last is not None:
                delivered = (1 - a.delivered_smoothing) * delivered + a.delivered_smoothing * last
            per_job: dict[str, float] = {}
            if a.delivered_per_job:
                old = snapshot.policy_state.get("delivered_jobs", {})
                for job_id, got in delivered_by_job(snapshot).items():
                    before = float(old.get(job_id, delivered))
                    per_job[job_id] = (1 - a.delivered_smoothing) * before + a.delivered_smoothing * got
            predictions = at_ideal_resources(predictions, fraction=delivered, per_job=per_job)
        quick = self._heuristic(snapshot, predictions, raw)
        classes, fair_s = quick.policy_state.get("classes", {}), quick.policy_state.get("fair_s", {})
        quick = replace(quick, policy_state={k: v for k, v in quick.policy_state.items()
                                             if k not in ("classes", "fair_s")})
        # The market plans rigid gangs (n_j rounds at g_j GPUs); elastic jobs are sized by marginal gains instead,
        # so it is planned (and may take over) only while most jobs are rigid, and only late rigid jobs count
        # towards the overload that hands it the round.
        rigid = {j.job_id for j in snapshot.jobs if j.is_rigid}
        mostly_rigid = len(rigid) >= a.market_rigid_share * len(snapshot.jobs)
        if a.planner == "market":
            shares = self._market.share(snapshot, predictions)
        elif a.planner == "heuristic" or not mostly_rigid:
            shares = quick
        else:
            market = self._market.share(snapshot, predictions)
            late = sum(1 for i in quick.policy_state.get("hopeless", ()) if i in rigid)
            use_market = late > a.hybrid_late_share * len(snapshot.jobs)
            shares = replace(market if use_market else quick, policy_state=market.policy_state)
        if a.elastic_shares and any(not j.is_rigid for j in snapshot.jobs):
            shares = replace(shares, requests=self._sized(snapshot, predictions, shares.requests, classes, fair_s))
        if a.pack_order != "plan":
            shares = replace(shares, requests=order_for_packer(snapshot, predictions, shares.requests, a.pack_order))
        batches = goodput_batches(snapshot, shares.requests)
        if batches:
            shares = replace(shares, batch_sizes=batches)
        if a.fair_target in ("lifetime", "elastic-lifetime", "auto"):
            shares = replace(shares, policy_state={**shares.policy_state, "contention": record_contention(snapshot)})
        if delivered is None:
            return shares
        return replace(shares, policy_state={**shares.policy_state, "delivered": delivered, "delivered_jobs": per_job})

    def _sized(
        self, snapshot: ClusterSnapshot, predictions: Predictions, requests: tuple[ShareRequest, ...],
        classes: Mapping[str, int], fair_s: Mapping[str, float],
    ) -> tuple[ShareRequest, ...]:
        """The plan's order with each elastic job's worker count chosen by marginal gains (`elastic_shares`)."""
        a = self.args
        by_id = {j.job_id: j for j in snapshot.jobs}
        order = [by_id[r.job_id] for r in requests if r.job_id in by_id]
        curves = {j.job_id: RemainingCurve.of(j, predictions[j.job_id], forecast=a.scaling_forecast,
                                              goodput_forecast=a.goodput_forecast)
                  for j in order if not j.is_rigid}
        previous = {job_id: alloc.gpus for job_id, alloc in snapshot.previous.items()}
        capacity = snapshot.total_gpus
        tail_gpus: dict[str, int] = {}
        for j in order if a.tail_at_max else ():  # the tail sets the makespan: sized before everyone else
            need = j.max_gpus if j.is_rigid else j.min_gpus
            if classes.get(j.job_id) != 0 or need > capacity:
                continue
            tail_gpus[j.job_id] = need if j.is_rigid else efficient_size(j, curves[j.job_id], capacity, 0.0)
            capacity -= tail_gpus[j.job_id]
        gpus, admitted = size_jobs(
            [j for j in order if j.job_id not in tail_gpus], curves, capacity=capacity, previous_gpus=previous,
            first={i for i, c in classes.items() if c == 0},
            boost={i: a.urgent_boost for i, c in classes.items() if c == 2},
            fair_s=fair_s,
            args=SizingArgs(a.min_efficiency, a.resize_cost_s, a.min_resize_gain, a.gain_norm, a.admit_efficient),
        )
        gpus.update(tail_gpus)
        admitted = [j.job_id for j in order if j.job_id in gpus]  # in the plan's order
        placed = set(admitted)
        head = tuple(ShareRequest(i, gpus[i]) for i in admitted)
        # The others follow at their minimum, so the packer can fill what placement leaves. Where workers cannot
        # move the packer keeps a requested job's running workers before it places anything, so a running job
        # the plan leaves out is not requested: it would keep GPUs the plan gave to others.
        rest = tuple(ShareRequest(j.job_id, j.min_gpus) for j in order if j.job_id not in placed
                     and (snapshot.workers_can_move or j.job_id not in snapshot.previous))
        return head + rest

    def _heuristic(self, snapshot: ClusterSnapshot, predictions: Predictions, raw: Predictions) -> Shares:
        a = self.args
        jobs = snapshot.jobs
        if not jobs:
            return Shares((), policy_state={"fair_finish": {}, "job_ids": []})
        state = snapshot.policy_state
        ids = [j.job_id for j in jobs]
        series: dict[str, list[float]] = {k: v for k, v in state.get("fair_finish", {}).items() if k in set(ids)}
        total_gpus = snapshot.total_gpus
        share = min(1.0, total_gpus / len(jobs))
        changed = sorted(state.get("job_ids", [])) != sorted(ids)
        now = snapshot.now_s
        remaining = {j.job_id: predictions[j.job_id].remaining_seconds for j in jobs}
        for job in jobs:
            if changed or job.job_id not in series:
                p = predictions[job.job_id]
                estimate = job.arrival_s + p.isolated_seconds / share
                series[job.job_id] = record_estimate(series.get(job.job_id), now, estimate)
        bound = longest = max(remaining.values())
        if a.tail_bound == "work":  # the makespan lower bound: the longest job, or all the work packed on the GPUs
            work = sum(j.max_gpus * remaining[j.job_id] for j in jobs) / max(total_gpus, 1)
            bound = max(longest, a.tail_work_factor * work)
        threshold = bound - a.tail_window_s

        def in_tail(job_id: str) -> bool:
            return a.makespan_tail and remaining[job_id] >= threshold

        ranked = []
        contention = max(1.0, snapshot.total_jobs_seen / max(total_gpus, 1))
        target = a.fair_target
        if target == "auto":
            target = "lifetime" if any(not j.is_rigid for j in jobs) else "static"
        deadline_based = target in ("static", "lifetime", "elastic-lifetime")
        fair_time = {j.job_id: raw[j.job_id].isolated_seconds * contention for j in jobs}
        if target in ("lifetime", "elastic-lifetime"):
            lifetime = lifetime_fair_seconds(snapshot, raw, forecast=a.scaling_forecast,
                                             goodput_forecast=a.goodput_forecast)
            for j in jobs:
                if target == "lifetime" or not j.is_rigid:
                    fair_time[j.job_id] = lifetime[j.job_id]
        guard = a.urgent_rounds * snapshot.round_seconds if deadline_based else a.urgent_window_s
        hopeless: set[str] = set()  # Moore–Hodgson: the jobs whose deadlines cannot all be met, largest work first
        if deadline_based and a.demand_bound > 0:
            deadlines = sorted(
                (
                    j.arrival_s + a.rho_max * fair_time[j.job_id],
                    j.max_gpus * remaining[j.job_id],
                    j.job_id,
                )
                for j in jobs
                if not in_tail(j.job_id)
            )
            work, kept = 0.0, []
            for deadline, gpu_seconds, job_id in deadlines:
                work += gpu_seconds
                heapq.heappush(kept, (-gpu_seconds, job_id))
                while work > a.demand_bound * total_gpus * max(deadline - now, 0.0) and kept:
                    dropped, dropped_id = heapq.heappop(kept)
                    work += dropped
                    hopeless.add(dropped_id)
        for i, job in enumerate(jobs):
            r = remaining[job.job_id]
            if deadline_based:
                fair = job.arrival_s + fair_time[job.job_id]
                deadline = job.arrival_s + a.rho_max * (fair - job.arrival_s)
            else:
                fair = smoothed_finish_time(series[job.job_id], now)
                deadline = a.rho_max * fair
            laxity = deadline - now - r
            projected_rho = (now + r - job.arrival_s) / max(fair - job.arrival_s, 1e-9)
            if in_tail(job.job_id):
                ranked.append((0, -r, i, job))
            elif r <= a.finish_rounds * snapshot.round_seconds:
                ranked.append((1, r * job.max_gpus, i, job))
            elif a.fairness and job.job_id not in hopeless and laxity < guard + a.urgent_slack * r:
                ranked.append((2, laxity if deadline_based else -projected_rho, i, job))
            else:
                sticky = (1.0 - a.stickiness) if job.job_id in snapshot.previous else 1.0
                ranked.append((3, r * job.max_gpus * sticky, i, job))
        ranked.sort(key=lambda e: e[:3])
        requests = tuple(ShareRequest(e[3].job_id, e[3].max_gpus) for e in ranked)
        classes = {e[3].job_id: e[0] for e in ranked}
        state = {"fair_finish": series, "job_ids": ids, "hopeless": sorted(hopeless), "classes": classes,
                 "fair_s": fair_time}
        return Shares(requests, policy_state=state)


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
    for _, gpus, factor, ideal in _speedups_last_round(snapshot):
        got += gpus * (factor - 1.0)
        wanted += gpus * (ideal - 1.0)
    return None if wanted <= 0 else min(1.0, max(0.0, got / wanted))


def _speedups_last_round(snapshot: ClusterSnapshot) -> Iterator[tuple[str, int, float, float]]:
    """(job, GPUs, speed-up its CPU and memory gave, ideal speed-up) per job that ran last round with an
    ideal speed-up above 1."""
    for job in snapshot.jobs:
        allocation = snapshot.previous.get(job.job_id)
        sensitivity = job.profile.sensitivity
        if allocation is None or sensitivity is None or sensitivity.ideal_speedup <= 1.0:
            continue
        factor = sensitivity.factor(allocation.cpu_per_gpu, allocation.memory_gib_per_gpu)
        yield job.job_id, allocation.gpus, factor, sensitivity.ideal_speedup


def without_speedup_calibration(snapshot: ClusterSnapshot, predictions: Predictions) -> Predictions:
    """Predictions of CPU/memory-sensitive jobs at the profile's GPU-proportional speed, without a measured rescaling.

    A predictor that rescales a job's profile by its measured speed (`bayesian-regime`'s 40 % rule)
    reads the CPU/memory speed-up the packer gave a sensitive job as a profile error: a job that ran
    at its ideal share looks 2.5× faster, and its forecast jumps back when the ratio re-enters the
    tolerance. The policy accounts for that speed-up itself (`delivered_share`), so for these jobs
    the remaining, ideal and isolated times are divided by the ratio of the forecast to the profile's
    time for the forecast epochs.
    """
    out = dict(predictions.jobs)
    for job in snapshot.jobs:
        p = out.get(job.job_id)
        sens = job.profile.sensitivity
        if p is None or sens is None or sens.ideal_speedup <= 1.0 or p.remaining_seconds <= 0:
            continue
        samples = {b: e * job.samples_per_epoch for b, e in p.remaining_epochs_by_batch_size.items()}
        profiled = seconds_for(job.profile, samples, gpus=job.max_gpus)
        if not 0 < profiled < float("inf"):
            continue
        scale = p.remaining_seconds / profiled
        if abs(scale - 1.0) > 1e-6:
            out[job.job_id] = replace(
                p,
                remaining_seconds=p.remaining_seconds / scale,
                remaining_seconds_ideal=p.remaining_seconds_ideal / scale,
                isolated_seconds=p.isolated_seconds / scale,
            )
    return Predictions(MappingProxyType(out))


def delivered_by_job(snapshot: ClusterSnapshot) -> dict[str, float]:
    """Per job that ran last round with an ideal speed-up s > 1: (f − 1)/(s − 1), f the speed-up it got."""
    return {job_id: min(1.0, max(0.0, (factor - 1.0) / (ideal - 1.0)))
            for job_id, _, factor, ideal in _speedups_last_round(snapshot)}


def at_ideal_resources(
    predictions: Predictions, fraction: float = 1.0, per_job: Mapping[str, float] | None = None
) -> Predictions:
    """Predictions whose remaining (and isolated) times assume `fraction` of the ideal-CPU/memory speed-up.

    `fraction` interpolates the time saved: 1 is the job's ideal CPU and memory, 0 the
    GPU-proportional share (the predictions as they are).
    """
    out = {}
    for job_id, p in predictions.jobs.items():
        share = per_job.get(job_id, fraction) if per_job else fraction
        faster = share * (p.remaining_seconds - p.remaining_seconds_ideal)
        out[job_id] = replace(
            p,
            remaining_seconds=p.remaining_seconds - faster,
            isolated_seconds=max(0.0, p.isolated_seconds - faster),
        )
    return Predictions(MappingProxyType(out))


def goodput_batches(snapshot: ClusterSnapshot, requests: tuple[ShareRequest, ...]) -> dict[str, int]:
    """Each requested goodput job's goodput-best batch for the GPUs it asks for."""
    jobs = {j.job_id: j for j in snapshot.jobs if j.goodput_adaptive}
    out = {}
    for r in requests:
        if r.job_id in jobs and (batch := goodput.best_batch(jobs[r.job_id], r.gpus)) is not None:
            out[r.job_id] = batch
    return out


def build(args: StrettoArgs) -> StrettoPolicy:
    return StrettoPolicy(args)


def lifetime_fair_seconds(snapshot: ClusterSnapshot, predictions: Predictions, *, forecast: bool,
                          goodput_forecast: goodput.Forecast = "profile") -> dict[str, float]:
    """T_fair per job (`stretto.core.fair_share`, the metric's definition) at an estimate of its lifetime contention.

    The metric averages the jobs contending over the job's whole life; the policy knows the past part only, so
    N̂_j is the mean of the active-job count over the job's time so far (from its arrival, counted at now for a
    job just seen) and the current count for its predicted remaining time. The work is its samples done at the
    batch sizes it ran, and the forecast's (or the current batch size's) for the rest, at the profile's rates.
    """
    out = {}
    active = len(snapshot.jobs)
    total_gpus = snapshot.total_gpus
    for job in snapshot.jobs:
        p = predictions[job.job_id]
        if job.goodput_adaptive:
            out[job.job_id] = _goodput_fair_seconds(snapshot, job, p.remaining_seconds, active, goodput_forecast)
            continue
        work = samples_by_batch_size(job.batch_size_history, samples_per_epoch=job.samples_per_epoch,
                                     start_sample=0.0, end_sample=job.samples_done, default_batch_size=job.batch_size)
        if forecast and p.remaining_epochs_by_batch_size:
            for b, e in p.remaining_epochs_by_batch_size.items():
                work[b] = work.get(b, 0.0) + e * job.samples_per_epoch
        else:
            work[job.batch_size] = work.get(job.batch_size, 0.0) + job.remaining_samples
        elapsed = max(0.0, snapshot.now_s - job.arrival_s)
        past = contention_so_far(snapshot, job.job_id, default=active)
        ahead = max(0.0, p.remaining_seconds)
        n_hat = (past * elapsed + active * ahead) / (elapsed + ahead) if elapsed + ahead > 0 else float(active)
        share = fair_share_gpus(total_gpus, n_hat)
        lo, hi = job.min_workers, job.max_workers
        n = min(hi, max(lo, int(share // job.gpus_per_worker)))
        span = sorted({lo, n, min(hi, n + 1)})  # the worker counts seconds_at reads at this share
        curve = scaling_curve(job.profile, work, min_workers=span[0], max_workers=span[-1],
                              gpus_per_worker=job.gpus_per_worker)
        if span[0] != lo:  # below the range's minimum the curve's first point must be the minimum
            curve = scaling_curve(job.profile, work, min_workers=lo, max_workers=lo,
                                  gpus_per_worker=job.gpus_per_worker) + curve
        out[job.job_id] = seconds_at(curve, share)
    return out


def _goodput_fair_seconds(snapshot: ClusterSnapshot, job: JobState, remaining_s: float, active: int,
                          forecast: goodput.Forecast) -> float:
    """T_fair of a goodput job, as `lifetime_fair_seconds` does, on its goodput curve (`goodput.lifetime_seconds`)."""
    elapsed = max(0.0, snapshot.now_s - job.arrival_s)
    past = contention_so_far(snapshot, job.job_id, default=active)
    ahead = max(0.0, remaining_s)
    n_hat = (past * elapsed + active * ahead) / (elapsed + ahead) if elapsed + ahead > 0 else float(active)
    share = fair_share_gpus(snapshot.total_gpus, n_hat)
    lo, hi, w = job.min_workers, job.max_workers, job.gpus_per_worker
    n = min(hi, max(lo, int(share // w)))
    curve = tuple((k * w, goodput.lifetime_seconds(job, k * w, forecast)) for k in sorted({lo, n, min(hi, n + 1)}))
    return seconds_at(curve, share)


def contention_so_far(snapshot: ClusterSnapshot, job_id: str, *, default: float) -> float:
    """The mean active-job count since the job arrived, as `StrettoPolicy` records it (policy_state "contention")."""
    record = snapshot.policy_state.get("contention", {}).get(job_id)
    if not record or record[1] <= 0:
        return default
    return float(record[0]) / float(record[1])


def record_contention(snapshot: ClusterSnapshot) -> dict[str, list[float]]:
    """Add this round to each active job's [Σ active jobs × seconds, seconds] since its arrival."""
    old = snapshot.policy_state.get("contention", {})
    active = len(snapshot.jobs)
    out = {}
    for job in snapshot.jobs:
        integral, seconds = old.get(job.job_id, (0.0, 0.0))
        if seconds == 0.0:  # first seen: it has waited since its arrival at (about) today's contention
            seconds = max(0.0, snapshot.now_s - job.arrival_s)
            integral = active * seconds
        out[job.job_id] = [integral + active * snapshot.round_seconds, seconds + snapshot.round_seconds]
    return out

