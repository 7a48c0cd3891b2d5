"""Worker counts for elastic jobs inside a priority order: minimums first, then marginal gains.

The `stretto` policy decides *who* runs first (its classes or its market); this module decides
*how many workers* each job gets, from each job's scaling curve:

* R_j(g): the job's predicted remaining seconds on g GPUs — its remaining samples at each batch
  size the regime forecast expects (`remaining_epochs_by_batch_size`; or all at the current batch
  size without `forecast`), at the profile's rate on g GPUs, times the predictor's calibration
  (its remaining time over the profile's at the job's maximum). A GNS job that will soon run at a
  large batch scales better, and R_j(g) knows it. A `goodput` job's R_j(g) is at the goodput-best
  batch on g GPUs (`stretto.core.goodput.remaining_seconds`), so its workers go by marginal goodput.
* Admission: in priority order, each job at its minimum (a rigid job at its size) while the GPUs
  last. A job that ran last round keeps what it had next, as far as GPUs remain after every
  admitted minimum (a resize costs an elastic restart).
* The makespan tail (`first`) is admitted at its efficient size, before later jobs' minimums: up to
  its maximum while a worker still buys at least `min_efficiency` of linear speed-up.
* Growth, one worker at a time: the worker that
  saves the most predicted time relative to the job's fair run time (ΔR_j / (w_j · T_fair_j), times
  the job's `boost` — the urgent class's), which is the gradient of Σ ρ_j, the same finish-time
  fairness the metric measures; finally any GPU still idle to whoever it speeds up most.
* A job that ran last round only changes size when it gains more than the resize costs:
  R_j(g_prev) − R_j(g) ≥ max(`resize_cost_s`, `min_resize_gain` · R_j(g_prev)); otherwise it
  stays at its previous size.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from stretto.core import goodput
from stretto.core.decisions import JobPrediction
from stretto.core.epoch_schedules import seconds_for
from stretto.core.snapshots import JobState


@dataclass(slots=True)
class RemainingCurve:
    """R_j(g), computed on demand and cached per GPU count."""

    job: JobState
    samples: dict[int, float]
    scale: float
    _cache: dict[int, float] = field(default_factory=dict)
    by_goodput: bool = False
    goodput_forecast: goodput.Forecast = "profile"

    @classmethod
    def of(cls, job: JobState, prediction: JobPrediction, *, forecast: bool,
           goodput_forecast: goodput.Forecast = "profile") -> RemainingCurve:
        if job.goodput_adaptive:
            return cls(job, {}, 1.0, by_goodput=True, goodput_forecast=goodput_forecast)
        per_epoch = job.samples_per_epoch
        forecast_samples = {b: e * per_epoch for b, e in prediction.remaining_epochs_by_batch_size.items() if e > 0}
        current = {job.batch_size: job.remaining_samples}
        # The predictor's calibration: its remaining time over the profile's for the same (forecast) samples.
        profiled = seconds_for(job.profile, forecast_samples or current, gpus=job.max_gpus)
        scale = prediction.remaining_seconds / profiled if 0 < profiled < math.inf else 1.0
        return cls(job, forecast_samples if forecast and forecast_samples else current, scale)

    def seconds(self, gpus: int) -> float:
        if gpus <= 0:
            return math.inf
        if gpus not in self._cache:
            self._cache[gpus] = self.scale * (goodput.remaining_seconds(self.job, gpus, self.goodput_forecast)
                                              if self.by_goodput
                                              else seconds_for(self.job.profile, self.samples, gpus=gpus))
        return self._cache[gpus]


@dataclass(frozen=True, slots=True)
class SizingArgs:
    min_efficiency: float
    resize_cost_s: float
    min_resize_gain: float
    gain_norm: str = "fair"  # marginal gain per GPU divided by: T_fair ("fair"), R̂ ("remaining"), R̂² ("srpt")
    admit_efficient: bool = True  # every job admitted at its efficient size, not only the tail


def size_jobs(
    jobs: Sequence[JobState],
    curves: Mapping[str, RemainingCurve],
    *,
    capacity: int,
    previous_gpus: Mapping[str, int],
    first: set[str],
    boost: Mapping[str, float],
    fair_s: Mapping[str, float],
    args: SizingArgs,
) -> tuple[dict[str, int], list[str]]:
    """GPUs per admitted job (whole workers in its range) and the admitted jobs in priority order.

    `jobs` is the priority order; jobs not admitted get no entry (their minimum did not fit).
    """
    free = capacity
    gpus: dict[str, int] = {}
    admitted: list[JobState] = []
    for job in jobs:
        need = job.min_gpus if not job.is_rigid else job.max_gpus
        if need <= free:
            if (args.admit_efficient or job.job_id in first) and not job.is_rigid:  # sized before later minimums
                need = efficient_size(job, curves[job.job_id], free, args.min_efficiency)
            gpus[job.job_id] = need
            admitted.append(job)
            free -= need
    elastic = [j for j in admitted if not j.is_rigid]
    # A job that ran keeps its previous size next, in priority order, as far as GPUs remain.
    for job in elastic:
        before = previous_gpus.get(job.job_id, 0)
        want = min(job.max_gpus, before - before % job.gpus_per_worker)
        extra = min(want - gpus[job.job_id], free - free % job.gpus_per_worker)
        if extra > 0:
            gpus[job.job_id] += extra
            free -= extra

    def can_grow(job: JobState) -> bool:
        return gpus[job.job_id] + job.gpus_per_worker <= job.max_gpus and job.gpus_per_worker <= free

    def saved(job: JobState) -> float:
        curve = curves[job.job_id]
        g = gpus[job.job_id]
        return curve.seconds(g) - curve.seconds(g + job.gpus_per_worker)

    # 2. Marginal gains towards Σ ρ, then 3. any idle GPU where it saves the most time.
    rank = {j.job_id: i for i, j in enumerate(elastic)}

    def grow(candidates: list[JobState], relative: bool) -> None:
        nonlocal free
        heap: list[tuple[float, int, JobState]] = []

        def push(job: JobState) -> None:
            if not can_grow(job):
                return
            gain = saved(job) / job.gpus_per_worker
            if relative:
                r = curves[job.job_id].seconds(gpus[job.job_id])
                norm = {"fair": max(fair_s.get(job.job_id, 1.0), 1.0), "remaining": max(r, 1.0),
                        "srpt": max(r, 1.0) ** 2}[args.gain_norm]
                gain *= boost.get(job.job_id, 1.0) / norm
            if gain > 0:
                heapq.heappush(heap, (-gain, rank[job.job_id], job))

        for job in candidates:
            push(job)
        while heap and free > 0:
            _, _, job = heapq.heappop(heap)
            if not can_grow(job):
                continue
            gpus[job.job_id] += job.gpus_per_worker
            free -= job.gpus_per_worker
            push(job)

    grow(elastic, relative=True)
    grow(elastic, relative=False)
    # Resize hysteresis: a running job grows only for a gain worth the restart; what it gives back goes to
    # the others (new jobs pay a restore anyway).
    held: set[str] = set()
    for job in elastic:
        before = previous_gpus.get(job.job_id, 0)
        now = gpus[job.job_id]
        if before < job.min_gpus or now <= before or before > job.max_gpus or before % job.gpus_per_worker:
            continue
        curve = curves[job.job_id]
        gain = curve.seconds(before) - curve.seconds(now)
        if gain < max(args.resize_cost_s, args.min_resize_gain * curve.seconds(before)):
            free += now - before
            gpus[job.job_id] = before
            held.add(job.job_id)
    if held:
        grow([j for j in elastic if j.job_id not in held], relative=False)
    # Work conservation: a job whose minimum fits in what is left runs at it.
    placed = set(gpus)
    for job in jobs:
        need = job.min_gpus if not job.is_rigid else job.max_gpus
        if job.job_id not in placed and need <= free:
            gpus[job.job_id] = need
            admitted.append(job)
            free -= need
    return gpus, [j.job_id for j in jobs if j.job_id in gpus]


def efficient_size(job: JobState, curve: RemainingCurve, free: int, min_efficiency: float) -> int:
    """The job's minimum, grown a worker at a time while one buys `min_efficiency` of linear speed-up and fits."""
    g, w = job.min_gpus, job.gpus_per_worker
    while g + w <= min(job.max_gpus, free):
        now, then = curve.seconds(g), curve.seconds(g + w)
        if not (then > 0 and (now / then - 1.0) / (w / g) >= min_efficiency):
            break
        g += w
    return g
