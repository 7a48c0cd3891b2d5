"""The elastic workload: seeded TrainingJob-like jobs with elastic ranges, adaptation, tenants and weights.

Beside `combined:` (whose jobs are rigid), the workload an elastic, adaptation-aware, fair policy
is judged on. On the combined profile book (`load_combined_book`: Shockwave's V100 throughputs per
batch size and GPU count, where small batches scale poorly and large ones well, with Synergy's
CPU × memory sensitivities), each job draws:

* arrival: Poisson, mean `mean_interarrival_s`;
* model: uniform over the book's models;
* GPUs per worker: 1/2/4/8 with `gpus_per_worker_mix`;
* workers: a rigid job (`rigid_share`) has min = max; an elastic one has max from 2/4/8 workers
  (capped so that max × GPUs per worker ≤ `max_gpus`) and min uniform in 1..max/2;
* adaptation: none/GNS/Accordion with `mode_mix`, the initial batch size any but the largest of the
  model's, growing towards the largest (`stretto.sim.batch_schedules`);
* duration: Pollux's skew (as `shockwave:`) over [min_hours, max_hours], on the job's maximum GPUs
  at its initial batch size; the work (epochs) follows from it;
* tenant: one of `tenants`, uniformly; its weight (`tenant_weights`, cycled) is the job's weight.

    stretto simulate --workload elastic:jobs=40 --seed 3 --cluster 4x8,cpus=24,memory=500Gi ...
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stretto.core.profiles import ProfileBook
from stretto.sim.workloads import WorkloadError, WorkloadJob


class ElasticWorkloadArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    jobs: int = Field(40, ge=1, description="number of jobs")
    mean_interarrival_s: float = Field(120.0, ge=0, description="mean seconds between arrivals")
    min_hours: float = Field(0.2, gt=0, description="shortest duration on the job's maximum, hours")
    max_hours: float = Field(4.0, gt=0, description="longest duration on the job's maximum, hours")
    n_durations: int = Field(100, ge=10, description="log-spaced duration values")
    max_gpus: int = Field(16, ge=1, description="largest max workers × GPUs per worker")
    rigid_share: float = Field(0.25, ge=0, le=1, description="fraction of jobs with min = max")
    gpus_per_worker_mix: tuple[float, float, float, float] = Field(
        (0.55, 0.25, 0.12, 0.08), description="1/2/4/8 GPUs per worker"
    )
    mode_mix: tuple[float, float, float] = Field((0.3, 0.35, 0.35), description="none/accordion/gns probabilities")
    tenants: int = Field(3, ge=1, description="number of tenants")
    tenant_weights: tuple[float, ...] = Field((1.0, 1.0, 2.0), description="weight per tenant (cycled)")


def _durations(args: ElasticWorkloadArgs, rng: np.random.Generator) -> float:
    durations = np.logspace(np.log10(args.min_hours * 3600), np.log10(args.max_hours * 3600), args.n_durations)
    n = args.n_durations
    buckets = (durations[: int(0.2 * n)], durations[int(0.2 * n) : int(0.5 * n)],
               durations[int(0.5 * n) : int(0.9 * n)], durations[int(0.9 * n) :])
    return float(rng.choice(buckets[int(rng.choice(4, p=[0.72, 0.20, 0.05, 0.03]))]))


def generate_elastic(args: ElasticWorkloadArgs, *, profiles: ProfileBook, seed: int) -> list[WorkloadJob]:
    if not profiles.profiles:
        raise WorkloadError("elastic workload: empty profile book")
    if not args.tenant_weights or any(w <= 0 for w in args.tenant_weights):
        raise WorkloadError("elastic workload: field 'tenant_weights': need positive weights")
    rng = np.random.default_rng(seed)
    models = sorted(profiles.profiles)
    t = 0.0
    jobs: list[WorkloadJob] = []
    for i in range(args.jobs):
        if i > 0 and args.mean_interarrival_s > 0:
            t += rng.exponential(args.mean_interarrival_s)
        model = models[int(rng.integers(len(models)))]
        profile = profiles.get(model)
        per_worker = int(rng.choice([1, 2, 4, 8], p=list(args.gpus_per_worker_mix)))
        per_worker = min(per_worker, args.max_gpus)
        most = max(1, args.max_gpus // per_worker)
        if rng.random() < args.rigid_share:
            workers = int(rng.choice([w for w in (1, 2, 4) if w <= most]))
            low = high = workers
        else:
            high = int(rng.choice([w for w in (2, 4, 8) if w <= most] or [most]))
            low = int(rng.integers(1, max(1, high // 2) + 1))
        sizes = profile.batch_sizes
        batch = int(sizes[int(rng.integers(max(1, len(sizes) - 1)))])
        mode = str(rng.choice(["none", "accordion", "gns"], p=list(args.mode_mix)))
        if len(sizes) == 1:
            mode = "none"
        duration = _durations(args, rng)
        per_epoch = profile.samples_per_epoch or profile.default_batch_size * 100
        samples = profile.throughput(batch, high * per_worker) * duration
        epochs = max(1, round(samples / per_epoch))
        tenant = int(rng.integers(args.tenants))
        jobs.append(
            WorkloadJob(
                id=f"e{i:05d}",
                arrival_s=round(t, 3),
                model=model,
                batch_size=batch,
                epochs=epochs,
                samples_per_epoch=per_epoch,
                workers={"min": low, "max": high},
                gpus_per_worker=per_worker,
                tenant=f"tenant-{tenant}",
                weight=args.tenant_weights[tenant % len(args.tenant_weights)],
                adaptation={"mode": mode, "batch_sizes": [max(sizes)]},
            )
        )  # type: ignore[arg-type]
    return jobs
