"""Small builders for snapshots, jobs and profiles: shared by the tests, the benches and examples.

job = make_job("a", gpus=2, arrival_s=10)
snapshot = make_snapshot([job], nodes=make_nodes(2, gpus=4))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from stretto.core.profiles import ModelProfile, ResourceSensitivity
from stretto.core.snapshots import ClusterSnapshot, JobAllocation, JobState, NodeState, PolicyState

# A CPU-hungry image model: 2× faster with 6 CPUs/GPU than at the proportional 3, at 100 GiB/GPU.
CPU_HUNGRY = ResourceSensitivity(
    cpu_per_gpu=(1.0, 3.0, 6.0),
    memory_gib_per_gpu=(25.0, 50.0, 100.0),
    relative_throughput=((0.3, 0.4, 0.4), (0.5, 1.0, 1.0), (0.5, 1.5, 2.0)),
    ideal_cpu_per_gpu=6.0,
    ideal_memory_gib_per_gpu=100.0,
    ideal_speedup=2.0,
)


def make_profile(
    model: str = "toy",
    *,
    samples_per_second: float = 100.0,
    batch_size: int = 32,
    sensitivity: ResourceSensitivity | None = None,
    samples_per_epoch: int | None = 1000,
) -> ModelProfile:
    """`samples_per_second` per GPU at the proportional share, scaling linearly with GPUs."""
    return ModelProfile(
        model=model,
        samples_per_second={(batch_size, 1): samples_per_second},
        default_batch_size=batch_size,
        samples_per_epoch=samples_per_epoch,
        sensitivity=sensitivity,
    )


DEFAULT_PROFILE = make_profile()


def make_job(
    job_id: str,
    *,
    gpus: int = 1,
    arrival_s: float = 0.0,
    samples: float = 1000.0,
    done: float = 0.0,
    profile: ModelProfile = DEFAULT_PROFILE,
    tenant: str = "",
    weight: float = 1.0,
    attained_gpu_seconds: float = 0.0,
    min_workers: int | None = None,
    gpus_per_worker: int = 1,
    samples_per_epoch: float | None = None,
    planned_batch_sizes: tuple[tuple[int, int], ...] = (),
) -> JobState:
    workers = gpus // gpus_per_worker
    return JobState(
        job_id=job_id,
        model=profile.model,
        profile=profile,
        arrival_s=arrival_s,
        total_samples=samples,
        samples_per_epoch=samples_per_epoch or samples,
        batch_size=profile.default_batch_size,
        samples_done=done,
        min_workers=min_workers or workers,
        max_workers=workers,
        gpus_per_worker=gpus_per_worker,
        tenant=tenant,
        weight=weight,
        attained_gpu_seconds=attained_gpu_seconds,
        planned_batch_sizes=planned_batch_sizes,
    )


def make_nodes(
    count: int, *, gpus: int = 8, cpus: float | None = None, memory_gib: float | None = None
) -> tuple[NodeState, ...]:
    return tuple(
        NodeState(
            f"n{i}",
            gpus,
            float(cpus if cpus is not None else 3.0 * gpus),
            float(memory_gib if memory_gib is not None else 50.0 * gpus),
        )
        for i in range(count)
    )


def make_snapshot(
    jobs: Iterable[JobState],
    *,
    nodes: tuple[NodeState, ...] | None = None,
    now_s: float = 0.0,
    round_seconds: float = 60.0,
    previous: Mapping[str, JobAllocation] | None = None,
    policy_state: PolicyState | None = None,
    round_index: int = 0,
    workers_can_move: bool = True,
) -> ClusterSnapshot:
    jobs = tuple(jobs)
    return ClusterSnapshot(
        now_s=now_s,
        round_index=round_index,
        round_seconds=round_seconds,
        jobs=jobs,
        nodes=nodes if nodes is not None else make_nodes(1),
        previous=MappingProxyType(dict(previous or {})),
        policy_state=MappingProxyType(dict(policy_state or {})),
        workers_can_move=workers_can_move,
        total_jobs_seen=len(jobs),
    )
