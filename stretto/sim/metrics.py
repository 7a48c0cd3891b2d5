"""What a simulation run is judged by: makespan, JCTs, finish-time fairness, utilisation, solver time.

ρ_j = JCT_j / (isolated_j × max(1, N/G)) with N the jobs in the trace and G the cluster's GPUs
(Shockwave's static contention factor); a job is treated unfairly when ρ_j > 1.05.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretto.sim.simulator import SimulationResult

UNFAIR_RHO = 1.05


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


def rhos(result: SimulationResult) -> np.ndarray:
    contention = max(1.0, len(result.outcomes) / result.total_gpus)
    return np.array([o.jct_s / (o.isolated_s * contention) for o in result.outcomes])


def summarise(result: SimulationResult) -> Summary:
    jct = np.array([o.jct_s for o in result.outcomes])
    rho = rhos(result)
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
    )
