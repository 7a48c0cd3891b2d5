"""Prometheus metrics of the operator: what a platform team graphs and alerts on."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ROUND_SECONDS = Histogram("stretto_round_duration_seconds", "Wall time of one round: snapshot, solve, apply",
                          buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))
SOLVER_SECONDS = Histogram("stretto_round_solver_seconds", "Time in the core (predict, share, pack) per round",
                           buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 15))
JOBS_BY_PHASE = Gauge("stretto_trainingjobs", "TrainingJobs by phase", ["phase"])
GPUS_BY_TENANT = Gauge("stretto_allocated_gpus", "GPUs the last round allocated, by tenant", ["tenant"])
JOB_RHO = Gauge("stretto_job_predicted_rho", "Predicted finish-time fairness per job", ["namespace", "job"])
SCALE_EVENTS = Counter("stretto_scale_events_total", "Workers added or removed by rounds", ["direction"])
API_WRITES = Counter("stretto_operator_api_writes_total", "Writes the operator made to the API server",
                     ["verb", "resource"])


def writes_so_far() -> int:
    """Every write counted in API_WRITES, all verbs and resources together."""
    return int(sum(sample.value for metric in API_WRITES.collect() for sample in metric.samples
                   if sample.name.endswith("_total")))
