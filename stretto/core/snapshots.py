"""The round's input: a frozen picture of the cluster at one instant.

An adapter builds a `ClusterSnapshot` (the simulator from its virtual state, the operator from its
watch cache) and hands it to `stretto.core.rounds.run_round`. Everything a policy may base a
decision on is in here: per-job history (arrival, attained service, epochs and batch sizes so
far), the nodes, the previous round's allocation and the policies' own serialisable state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from stretto.core.profiles import ModelProfile

# JSON-serialisable state a policy carries from one round to the next (e.g. Gavel's time counters).
PolicyState = Mapping[str, Any]
EMPTY_STATE: PolicyState = MappingProxyType({})


class AdaptationMode(StrEnum):
    NONE = "none"
    GNS = "gns"
    ACCORDION = "accordion"
    GOODPUT = "goodput"  # the scheduler picks the batch in `batch_size_range` each round, by goodput


@dataclass(frozen=True, slots=True)
class NodeState:
    name: str
    gpus: int
    cpus: float
    memory_gib: float

    @property
    def cpu_per_gpu(self) -> float:
        return self.cpus / self.gpus if self.gpus else 0.0

    @property
    def memory_gib_per_gpu(self) -> float:
        return self.memory_gib / self.gpus if self.gpus else 0.0


@dataclass(frozen=True, slots=True)
class WorkerPlacement:
    """One worker: its node, the GPU indices on that node, its CPUs and memory.

    A shared worker (`shared_with` names the other job) holds one GPU together with one other
    single-GPU job: `gpu_fraction` is its part of the GPU (1/2), and its CPUs and memory are its
    part of what a whole GPU would get, so per GPU-equivalent they read as for a whole GPU.
    """

    node: str
    gpu_indices: tuple[int, ...]
    cpus: float
    memory_gib: float
    gpu_fraction: float = 1.0
    shared_with: str | None = None

    @property
    def gpu_share(self) -> float:
        """GPUs' worth this worker holds: its GPU count times its fraction."""
        return len(self.gpu_indices) * self.gpu_fraction


@dataclass(frozen=True, slots=True)
class JobAllocation:
    job_id: str
    workers: tuple[WorkerPlacement, ...]

    @property
    def gpus(self) -> int:
        """GPU devices the job runs on (a shared GPU counts once for each of its two jobs)."""
        return sum(len(w.gpu_indices) for w in self.workers)

    @property
    def gpu_share(self) -> float:
        """GPUs' worth the job holds: a shared GPU counts 1/2 for each of its jobs."""
        return sum(w.gpu_share for w in self.workers)

    @property
    def shared(self) -> bool:
        return any(w.shared_with is not None for w in self.workers)

    @property
    def nodes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(w.node for w in self.workers))

    @property
    def cpu_per_gpu(self) -> float:
        """The slowest worker's CPUs per GPU (per GPU's worth when shared): training runs at its pace."""
        return min(w.cpus / w.gpu_share for w in self.workers)

    @property
    def memory_gib_per_gpu(self) -> float:
        return min(w.memory_gib / w.gpu_share for w in self.workers)

    @property
    def cpus(self) -> float:
        return sum(w.cpus for w in self.workers)

    @property
    def memory_gib(self) -> float:
        return sum(w.memory_gib for w in self.workers)


@dataclass(frozen=True, slots=True, eq=False)
class JobState:
    """One active (arrived, unfinished) job and its history so far.

    Work is counted in samples; an epoch is `samples_per_epoch` samples. `batch_size_history`
    is run-length encoded as (first epoch, batch size) pairs, the current one last.
    `planned_batch_sizes` is the job's future schedule when one is known (simulation of an
    explicit trace); the operator leaves it empty and predictors must cope.
    `batch_size_options` lists the batch sizes the job may use (from its spec: an adaptive job
    declares them, not when it will use them); empty means "only the current one is known".
    A `goodput` job declares `batch_size_range` (min, max): each round the scheduler chooses its batch
    there with its GPU count (`stretto.core.goodput`, read from `profile.goodput`), and its samples are
    counted at the initial batch size (a sample at batch b is worth its statistical efficiency).
    """

    job_id: str
    model: str
    profile: ModelProfile
    arrival_s: float
    total_samples: float
    samples_per_epoch: float
    batch_size: int
    samples_done: float = 0.0
    min_workers: int = 1
    max_workers: int = 1
    gpus_per_worker: int = 1
    tenant: str = ""
    weight: float = 1.0
    adaptation: AdaptationMode = AdaptationMode.NONE
    # CPUs per GPU to run at while its CPU sensitivity is profiled, by preference (stretto.core.profiling)
    probe_cpus_per_gpu: tuple[float, ...] = ()
    attained_gpu_seconds: float = 0.0
    run_seconds: float = 0.0
    first_start_s: float | None = None
    last_run_end_s: float | None = None
    batch_size_history: tuple[tuple[int, int], ...] = ()
    planned_batch_sizes: tuple[tuple[int, int], ...] = ()
    batch_size_options: tuple[int, ...] = ()
    batch_size_range: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_workers <= self.max_workers:
            raise ValueError(f"job {self.job_id}: need 1 <= min_workers <= max_workers")
        if self.gpus_per_worker < 1 or self.total_samples <= 0 or self.samples_per_epoch <= 0:
            raise ValueError(f"job {self.job_id}: gpus_per_worker, work and epoch size must be positive")

    @property
    def goodput_adaptive(self) -> bool:
        """A `goodput` job whose profile has a goodput model: its batch is the scheduler's choice."""
        return self.adaptation is AdaptationMode.GOODPUT and self.profile.goodput is not None

    @property
    def progress_fraction(self) -> float:
        return min(1.0, self.samples_done / self.total_samples)

    @property
    def min_gpus(self) -> int:
        return self.min_workers * self.gpus_per_worker

    @property
    def max_gpus(self) -> int:
        return self.max_workers * self.gpus_per_worker

    @property
    def is_rigid(self) -> bool:
        return self.min_workers == self.max_workers

    @property
    def remaining_samples(self) -> float:
        return max(0.0, self.total_samples - self.samples_done)

    @property
    def total_epochs(self) -> int:
        return math.ceil(self.total_samples / self.samples_per_epoch - 1e-9)

    @property
    def epochs_done(self) -> int:
        return int(self.samples_done // self.samples_per_epoch)

    @property
    def owner(self) -> str:
        """The fairness principal: the tenant, or the job itself when it has none."""
        return self.tenant or self.job_id


@dataclass(frozen=True, slots=True, eq=False)
class ClusterSnapshot:
    """Frozen input of one round. `jobs` and `nodes` are in a stable order (the adapter's)."""

    now_s: float
    round_index: int
    round_seconds: float
    jobs: tuple[JobState, ...]
    nodes: tuple[NodeState, ...]
    previous: Mapping[str, JobAllocation] = field(default_factory=lambda: MappingProxyType({}))
    policy_state: PolicyState = field(default_factory=lambda: EMPTY_STATE)
    total_jobs_seen: int = 0  # jobs submitted so far, finished included (ρ's contention factor)
    # False where a running worker stays on its node (a live cluster: a pod never moves); packers
    # then keep running workers where they are and place only new ones. True lets every round
    # re-place every job from scratch, as the peers' simulators do.
    workers_can_move: bool = True

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)

    @property
    def total_cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)

    @property
    def total_memory_gib(self) -> float:
        return sum(n.memory_gib for n in self.nodes)

    def job(self, job_id: str) -> JobState:
        for j in self.jobs:
            if j.job_id == job_id:
                return j
        raise KeyError(job_id)
