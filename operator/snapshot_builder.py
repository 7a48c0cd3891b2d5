"""Convert what the operator sees in the cluster into the core's round input, and back.

The Kubernetes edge of the one code path: TrainingJob, Node and Pod objects (plain dicts, as the
API returns them) become a `ClusterSnapshot`; the core's `RoundDecision` becomes one `JobPlan` per
job that the reconciler applies. No policy here: only unit conversion and bookkeeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.api.quantity import parse_bytes, parse_quantity
from stretto.core.decisions import RoundDecision
from stretto.core.profiles import ProfileBook
from stretto.core.snapshots import (
    EMPTY_STATE,
    AdaptationMode,
    ClusterSnapshot,
    JobAllocation,
    JobState,
    NodeState,
    PolicyState,
    WorkerPlacement,
)
from stretto.operator.accounting import attained_at
from stretto.operator.job_models import JobModels
from stretto.operator.reconcile import worker_index

GIB = 2**30


def job_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def node_state(node: dict[str, Any], reserved: tuple[float, float] = (0.0, 0.0)) -> NodeState | None:
    """A schedulable, Ready node with GPUs, less the (CPUs, GiB) other pods hold on it; None for anything a
    job cannot be placed on."""
    spec, status = node.get("spec") or {}, node.get("status") or {}
    if spec.get("unschedulable"):
        return None
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    allocatable = status.get("allocatable") or {}
    gpus = int(parse_quantity(allocatable.get(contracts.GPU_RESOURCE, 0)))
    if not ready or gpus <= 0:
        return None
    return NodeState(
        name=node["metadata"]["name"], gpus=gpus,
        cpus=max(0.0, float(parse_quantity(allocatable.get("cpu", 0))) - reserved[0]),
        memory_gib=max(0.0, parse_bytes(allocatable.get("memory", 0)) / GIB - reserved[1]),
    )


def _worker_placement(pod: dict[str, Any]) -> WorkerPlacement | None:
    node = (pod.get("spec") or {}).get("nodeName")
    annotations = pod.get("metadata", {}).get("annotations") or {}
    try:
        gpu_ids = contracts.parse_gpu_ids(annotations.get(contracts.ANNOTATION_GPU_IDS))
    except ValueError:
        return None
    if not node or not gpu_ids or pod.get("metadata", {}).get("deletionTimestamp"):
        return None
    requests = (pod["spec"]["containers"][0].get("resources") or {}).get("requests") or {}
    return WorkerPlacement(node=node, gpu_indices=tuple(gpu_ids),
                           cpus=float(parse_quantity(requests.get("cpu", 0))),
                           memory_gib=parse_bytes(requests.get("memory", 0)) / GIB)


def current_allocations(pods: list[dict[str, Any]]) -> dict[str, JobAllocation]:
    """What each job holds now: its bound, live worker pods, lowest worker index first."""
    workers: dict[str, list[tuple[int, WorkerPlacement]]] = {}
    for pod in pods:
        labels = pod.get("metadata", {}).get("labels") or {}
        job = labels.get(contracts.LABEL_JOB)
        placement = _worker_placement(pod)
        index = worker_index(pod)
        if job and placement is not None and index is not None:
            workers.setdefault(job_key(pod["metadata"]["namespace"], job), []).append((index, placement))
    return {key: JobAllocation(key, tuple(p for _, p in sorted(found, key=lambda f: f[0])))
            for key, found in workers.items()}


def job_state(body: dict[str, Any], book: ProfileBook, now_s: float | None = None,
              models: JobModels | None = None) -> JobState:
    """The core's view of one TrainingJob; its profile is its job model's (`job_models`: the posterior
    learned from its reports, else the prior its spec.profile declares). `models` caches those across
    rounds; without it they are built from `book`."""
    job = TrainingJob.model_validate(body)
    spec = job.spec
    status = body.get("status") or {}
    progress = status.get("progress") or {}
    accounting = status.get("accounting") or {}
    attained, run = attained_at(accounting, dt.datetime.fromtimestamp(now_s, dt.UTC) if now_s is not None else None)
    profile = (models or JobModels(book)).profile(job, body)
    adaptation = spec.adaptation
    starting_batch = adaptation.starting_batch_size if adaptation else profile.default_batch_size
    history = tuple((int(epoch), int(size)) for epoch, size in progress.get("batchSizeHistory") or [])
    return JobState(
        job_id=job_key(job.namespace, job.name),
        model=profile.model,
        profile=profile,
        arrival_s=_timestamp(body["metadata"].get("creationTimestamp")) or 0.0,
        total_samples=float(spec.work.epochs * spec.work.samples_per_epoch),
        samples_per_epoch=float(spec.work.samples_per_epoch),
        batch_size=int(progress.get("batchSize") or starting_batch),
        samples_done=float(progress.get("samplesDone") or 0.0),
        min_workers=spec.workers.min,
        max_workers=spec.workers.max,
        gpus_per_worker=spec.gpus_per_worker,
        tenant=job.tenant,
        weight=spec.weight,
        adaptation=AdaptationMode(adaptation.mode if adaptation else "none"),
        attained_gpu_seconds=attained,
        run_seconds=run,
        first_start_s=_timestamp(accounting.get("firstStart")),
        last_run_end_s=_timestamp(accounting.get("lastRunEnd")),
        batch_size_history=history,
        batch_size_options=tuple(adaptation.batch_sizes) if adaptation else (),
    )


def _scaled(state: JobState, time_scale: float) -> JobState:
    if time_scale == 1.0:
        return state

    def at(moment: float | None) -> float | None:
        return None if moment is None else moment * time_scale

    return replace(state, arrival_s=state.arrival_s * time_scale, first_start_s=at(state.first_start_s),
                   last_run_end_s=at(state.last_run_end_s),
                   attained_gpu_seconds=state.attained_gpu_seconds * time_scale,
                   run_seconds=state.run_seconds * time_scale)


def _weighted(state: JobState, tenant_weights: Mapping[str, float]) -> JobState:
    factor = tenant_weights.get(state.tenant, 1.0)
    return state if factor == 1.0 else replace(state, weight=state.weight * factor)


def _work_done(body: dict[str, Any]) -> bool:
    """All the job's work is reported done: it is finishing (the reconciler marks it Succeeded), not scheduled."""
    work = (body.get("spec") or {}).get("work") or {}
    done = ((body.get("status") or {}).get("progress") or {}).get("samplesDone")
    total = float(work.get("epochs", 0)) * float(work.get("samplesPerEpoch", 0))
    return done is not None and total > 0 and float(done) >= total


def build_snapshot(*, now_s: float, round_index: int, round_seconds: float, jobs: list[dict[str, Any]],
                   nodes: list[dict[str, Any]], pods: list[dict[str, Any]], book: ProfileBook,
                   policy_state: PolicyState = EMPTY_STATE, total_jobs_seen: int = 0,
                   time_scale: float = 1.0, tenant_weights: Mapping[str, float] | None = None,
                   reserved: Mapping[str, tuple[float, float]] | None = None,
                   models: JobModels | None = None) -> ClusterSnapshot:
    """The round's input. Finished (or work done), deleting jobs are left out; order is by arrival then name.

    Times are training seconds: wall times and durations are multiplied by `time_scale` (1 on a real
    cluster), so predictions and policies see the same clock as the job model's throughputs. A job's
    weight is its tenant's weight from the configuration times its own. `reserved` is the (CPUs, GiB)
    that pods Stretto does not manage hold on each node. `models` reads the jobs' models (default: from `book`,
    uncached).
    """
    models = models or JobModels(book)
    active = [j for j in jobs if not j["metadata"].get("deletionTimestamp")
              and (j.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not _work_done(j)]
    weights = tenant_weights or {}
    states = sorted((_weighted(_scaled(job_state(j, book, now_s, models), time_scale), weights) for j in active),
                    key=lambda s: (s.arrival_s, s.job_id))
    held = reserved or {}
    node_states = tuple(n for n in (node_state(node, held.get(node["metadata"]["name"], (0.0, 0.0)))
                                    for node in nodes) if n is not None)
    previous = current_allocations(pods)
    known = {s.job_id for s in states}
    return ClusterSnapshot(
        now_s=now_s * time_scale, round_index=round_index, round_seconds=round_seconds * time_scale,
        jobs=tuple(states),
        nodes=tuple(sorted(node_states, key=lambda n: n.name)),
        previous=MappingProxyType({k: v for k, v in previous.items() if k in known}),
        policy_state=policy_state, total_jobs_seen=max(total_jobs_seen, len(jobs)),
        workers_can_move=False,  # a pod never changes nodes: running workers stay, new ones get planned nodes
    )


@dataclass(frozen=True)
class JobPlan:
    """What the round decided for one job, in the terms the reconciler applies."""

    workers: int
    gpus: int
    cpu_per_worker: float | None = None
    memory_gib_per_worker: float | None = None
    nodes: tuple[str, ...] = ()   # planned node per worker index, where the packer chose one
    reason: str = ""               # why it waits or runs fewer workers than it could use
    remaining_seconds: float | None = None
    isolated_seconds: float | None = None
    round_index: int = 0
    regimes: tuple[tuple[int, float], ...] = ()  # expected epochs left per batch size


def plans_from_decision(decision: RoundDecision, snapshot: ClusterSnapshot) -> Mapping[str, JobPlan]:
    plans: dict[str, JobPlan] = {}
    for job in snapshot.jobs:
        prediction = decision.predictions.jobs.get(job.job_id)
        timing = {"remaining_seconds": prediction.remaining_seconds if prediction else None,
                  "isolated_seconds": prediction.isolated_seconds if prediction else None,
                  "round_index": decision.round_index,
                  "regimes": tuple(sorted((int(b), float(e)) for b, e in (
                      prediction.remaining_epochs_by_batch_size.items() if prediction else ())))}
        allocation = decision.allocations.get(job.job_id)
        if allocation is None:
            plans[job.job_id] = JobPlan(workers=0, gpus=0, reason=decision.waiting.get(job.job_id, ""), **timing)
            continue
        workers = allocation.workers
        plans[job.job_id] = JobPlan(
            workers=len(workers), gpus=allocation.gpus,
            cpu_per_worker=min(w.cpus for w in workers),
            memory_gib_per_worker=min(w.memory_gib for w in workers),
            nodes=tuple(w.node for w in workers),
            reason="" if allocation.gpus >= job.max_gpus else f"runs {len(workers)} of at most {job.max_workers} "
                   "workers: the other GPUs are in use by other jobs",
            **timing,
        )
    return MappingProxyType(plans)
