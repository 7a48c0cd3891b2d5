"""What a simulation run is judged by: makespan, JCTs, finish-time fairness, utilisation, solver time.

Finish-time fairness (Themis, for elastic jobs): ρ_j = JCT_j / T_fair_j. T_fair_j is the job's
run time on its fair share G/N̄_j of the cluster's G GPUs, clipped to its elastic range and read
off its own scaling curve (`stretto.core.fair_share`, the definition the `stretto` policy plans
with). N̄_j is the time-average, over the job's lifetime [arrival, finish), of the number of jobs
contending (arrived and not finished, the job itself included), taken from the run's outcomes. A
job is treated unfairly when ρ_j > 1.05.

`shockwave_rhos` is Shockwave's figure, kept for comparisons with the peers' published numbers:
ρ_j = JCT_j / (T_iso_j × max(1, N/G)) with N the jobs in the trace (a static contention factor)
and T_iso_j the job alone on its requested GPUs. On a trace of rigid one-GPU jobs `rhos` with
`contention="trace"` is exactly that figure; with the default `"lifetime"` contention it is the
Themis variant (N̄_j ≤ N, so ρ is higher for jobs that live while few others do). For a rigid
multi-GPU job the two differ even at the trace's N: Shockwave's share ignores the job's GPU
count (it credits a g-GPU job with a share of one GPU per 1/N), ours gives it G/N GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from stretto.core.fair_share import fair_seconds
from stretto.sim.simulator import JobOutcome, SimulationResult

UNFAIR_RHO = 1.05
Contention = Literal["lifetime", "trace"]


@dataclass(frozen=True, slots=True)
class Summary:
    makespan_s: float
    avg_jct_s: float
    median_jct_s: float
    p99_jct_s: float
    worst_rho: float
    unfair_fraction: float
    gpu_utilisation: float
    cpu_utilisation: float
    memory_utilisation: float
    solver_p50_s: float
    solver_p99_s: float
    solver_max_s: float
    rounds: int
    shockwave_worst_rho: float
    shockwave_unfair_fraction: float


def lifetime_contention(outcomes: tuple[JobOutcome, ...]) -> np.ndarray:
    """Per job, the time-averaged number of jobs active during its lifetime [arrival, finish), itself included."""
    starts = np.array([o.arrival_s for o in outcomes], dtype=float)
    ends = np.array([max(o.finish_s, o.arrival_s) for o in outcomes], dtype=float)
    times = np.unique(np.concatenate([starts, ends]))
    # N on [times[i], times[i+1]): arrived at or before times[i], finished after it.
    active = (np.searchsorted(np.sort(starts), times, side="right")
              - np.searchsorted(np.sort(ends), times, side="right"))
    area = np.concatenate([[0.0], np.cumsum(active[:-1] * np.diff(times))])  # ∫ N dt from times[0] to times[i]
    lo, hi = np.searchsorted(times, starts), np.searchsorted(times, ends)
    span = ends - starts
    at_arrival = active[lo].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (area[hi] - area[lo]) / span
    return np.where(span > 0, mean, np.maximum(at_arrival, 1.0))


def fair_times(result: SimulationResult, contention: Contention = "lifetime") -> np.ndarray:
    """T_fair per job (module doc); a job without a scaling curve is rigid on its GPUs at its isolated time."""
    outcomes = result.outcomes
    n = lifetime_contention(outcomes) if contention == "lifetime" else np.full(len(outcomes), float(len(outcomes)))
    return np.array([
        fair_seconds(o.scaling or ((o.gpus, o.isolated_s),), total_gpus=result.total_gpus, contention=float(c))
        for o, c in zip(outcomes, n, strict=True)
    ])


def rhos(result: SimulationResult, contention: Contention = "lifetime") -> np.ndarray:
    jct = np.array([o.jct_s for o in result.outcomes])
    return jct / fair_times(result, contention)


def shockwave_rhos(result: SimulationResult) -> np.ndarray:
    contention = max(1.0, len(result.outcomes) / result.total_gpus)
    return np.array([o.jct_s / (o.isolated_s * contention) for o in result.outcomes])


def summarise(result: SimulationResult) -> Summary:
    jct = np.array([o.jct_s for o in result.outcomes])
    rho = rhos(result)
    shockwave = shockwave_rhos(result)
    solver = np.array([r.solver_s for r in result.rounds]) if result.rounds else np.zeros(1)
    start = min(o.arrival_s for o in result.outcomes)
    makespan = max(o.finish_s for o in result.outcomes) - start
    # Utilisation is time-weighted over the rounds that had work (each round has the same length).
    gpu = np.mean([r.gpu_utilisation for r in result.rounds]) if result.rounds else 0.0
    cpu = np.mean([r.cpu_utilisation for r in result.rounds]) if result.rounds else 0.0
    mem = np.mean([r.memory_utilisation for r in result.rounds]) if result.rounds else 0.0
    return Summary(
        makespan_s=float(makespan),
        avg_jct_s=float(jct.mean()),
        median_jct_s=float(np.median(jct)),
        p99_jct_s=float(np.percentile(jct, 99)),
        worst_rho=float(rho.max()),
        unfair_fraction=float(np.mean(rho > UNFAIR_RHO)),
        gpu_utilisation=float(gpu),
        cpu_utilisation=float(cpu),
        memory_utilisation=float(mem),
        solver_p50_s=float(np.percentile(solver, 50)),
        solver_p99_s=float(np.percentile(solver, 99)),
        solver_max_s=float(solver.max()),
        rounds=len(result.rounds),
        shockwave_worst_rho=float(shockwave.max()),
        shockwave_unfair_fraction=float(np.mean(shockwave > UNFAIR_RHO)),
    )
