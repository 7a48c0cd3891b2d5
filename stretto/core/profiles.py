"""The job model: a job's throughput as a function of (model, GPUs, batch size, CPU and memory per GPU).

A `ModelProfile` is plain frozen data. Its base table holds samples per second at the
GPU-proportional share for each measured (batch size, GPU count); its optional
`ResourceSensitivity` scales that by how much faster or slower the job runs with more or less CPU
and memory per GPU (Synergy's normalised CPU × memory matrix). Every consumer (predictors, packers,
the simulator's progress, the operator's estimates) calls `ModelProfile.throughput`, so there is
one job model in the project.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stretto.core.goodput import GoodputModel


@dataclass(frozen=True, slots=True)
class ResourceSensitivity:
    """Throughput relative to the GPU-proportional share over a CPU × memory grid (per GPU).

    Lookup is a step function: the value at the largest grid point not above the allocation in
    each axis (an allocation below the first grid point reads the first row/column). This is how
    Synergy's simulator reads its matrices, and it never credits a job with more speed than
    was measured.
    """

    cpu_per_gpu: tuple[float, ...]
    memory_gib_per_gpu: tuple[float, ...]
    relative_throughput: tuple[tuple[float, ...], ...]  # [cpu index][memory index]
    ideal_cpu_per_gpu: float
    ideal_memory_gib_per_gpu: float
    ideal_speedup: float

    def __post_init__(self) -> None:
        if list(self.cpu_per_gpu) != sorted(self.cpu_per_gpu) or list(self.memory_gib_per_gpu) != sorted(
            self.memory_gib_per_gpu
        ):
            raise ValueError("sensitivity axes must be increasing")
        if len(self.relative_throughput) != len(self.cpu_per_gpu) or any(
            len(row) != len(self.memory_gib_per_gpu) for row in self.relative_throughput
        ):
            raise ValueError("sensitivity matrix shape does not match its axes")

    def factor(self, cpu_per_gpu: float, memory_gib_per_gpu: float) -> float:
        i = max(0, bisect.bisect_right(self.cpu_per_gpu, cpu_per_gpu + 1e-9) - 1)
        j = max(0, bisect.bisect_right(self.memory_gib_per_gpu, memory_gib_per_gpu + 1e-9) - 1)
        return self.relative_throughput[i][j]

    def cells(self) -> list[tuple[float, float, float]]:
        """Every (cpu per GPU, memory per GPU, relative throughput) grid cell."""
        return [
            (c, m, self.relative_throughput[i][j])
            for i, c in enumerate(self.cpu_per_gpu)
            for j, m in enumerate(self.memory_gib_per_gpu)
        ]


@dataclass(frozen=True, slots=True, eq=False)
class ModelProfile:
    """What a model's training job does with the resources it gets.

    `samples_per_second[(batch_size, gpus)]` is measured at the GPU-proportional CPU and memory
    share. GPU counts missing from the table scale linearly from the nearest measured count below
    (or above); a batch size missing from the table reads the nearest measured one.
    `scale_with_gpus=False` keeps the rate of the nearest entry as is (Synergy's simulator: a job's
    iteration time does not depend on its GPU count).
    `placement_rates[(batch_size, placement)]`, optional, is samples per second on a measured
    placement: GPUs on each node, in the smallest rotation of the job's worker order (Pollux's traces
    measure placements so, as a ring); `throughput_on` reads it and falls back to `throughput`.
    `goodput`, optional, is the model's goodput (`stretto.core.goodput`): what a `goodput` job runs by.
    """

    model: str
    samples_per_second: Mapping[tuple[int, int], float]
    default_batch_size: int
    samples_per_epoch: int | None = None
    sensitivity: ResourceSensitivity | None = None
    scale_with_gpus: bool = True
    source: str = ""
    placement_rates: Mapping[tuple[int, tuple[int, ...]], float] = field(default_factory=dict)
    goodput: GoodputModel | None = None
    _batch_sizes: tuple[int, ...] = field(init=False, repr=False)
    _rates: dict[tuple[int, int], float] = field(init=False, repr=False)  # base_throughput, memoised per profile

    def __post_init__(self) -> None:
        if not self.samples_per_second:
            raise ValueError(f"profile {self.model!r} has no throughput entries")
        if any(v <= 0 for v in self.samples_per_second.values()):
            raise ValueError(f"profile {self.model!r} has a non-positive throughput")
        object.__setattr__(self, "_batch_sizes", tuple(sorted({bs for bs, _ in self.samples_per_second})))
        object.__setattr__(self, "_rates", {})

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return self._batch_sizes

    def base_throughput(self, batch_size: int, gpus: int) -> float:
        """Samples per second on `gpus` GPUs at the GPU-proportional share."""
        if gpus <= 0:
            return 0.0
        cached = self._rates.get((batch_size, gpus))
        if cached is None:
            cached = self._rates[(batch_size, gpus)] = self._lookup(batch_size, gpus)
        return cached

    def _lookup(self, batch_size: int, gpus: int) -> float:
        bs = min(self._batch_sizes, key=lambda b: (abs(b - batch_size), b))
        known = sorted(g for b, g in self.samples_per_second if b == bs)
        if gpus in known:
            return self.samples_per_second[(bs, gpus)]
        below = [g for g in known if g < gpus]
        ref = below[-1] if below else known[0]
        rate = self.samples_per_second[(bs, ref)]
        return rate * gpus / ref if self.scale_with_gpus else rate

    def throughput(
        self,
        batch_size: int,
        gpus: int,
        cpu_per_gpu: float | None = None,
        memory_gib_per_gpu: float | None = None,
    ) -> float:
        """Samples per second; CPU/memory `None` means the GPU-proportional share."""
        rate = self.base_throughput(batch_size, gpus)
        if self.sensitivity is None or cpu_per_gpu is None or memory_gib_per_gpu is None:
            return rate
        return rate * self.sensitivity.factor(cpu_per_gpu, memory_gib_per_gpu)

    def throughput_on(
        self,
        batch_size: int,
        gpus_by_node: tuple[int, ...],
        cpu_per_gpu: float | None = None,
        memory_gib_per_gpu: float | None = None,
    ) -> float:
        """Samples per second on a placement (GPUs per node in worker order): measured, else `throughput`."""
        measured = self.placement_rates.get((batch_size, canonical_placement(gpus_by_node))) if self.placement_rates \
            else None
        if measured is None:
            return self.throughput(batch_size, sum(gpus_by_node), cpu_per_gpu, memory_gib_per_gpu)
        if self.sensitivity is None or cpu_per_gpu is None or memory_gib_per_gpu is None:
            return measured
        return measured * self.sensitivity.factor(cpu_per_gpu, memory_gib_per_gpu)


def canonical_placement(gpus_by_node: tuple[int, ...]) -> tuple[int, ...]:
    """GPUs per node without empty nodes, rotated to its smallest form ((4, 2) and (2, 4) are one ring)."""
    parts = tuple(g for g in gpus_by_node if g)
    return min((parts[i:] + parts[:i] for i in range(len(parts))), default=())


@dataclass(frozen=True, slots=True, eq=False)
class ProfileBook:
    """Profiles by model name, as loaded from one source (built-ins or a peer's files)."""

    profiles: Mapping[str, ModelProfile]
    source: str = ""

    def get(self, model: str) -> ModelProfile:
        try:
            return self.profiles[model]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise KeyError(
                f"no profile for model {model!r} in {self.source or 'the profile book'}; known: {known}"
            ) from None

    def __contains__(self, model: object) -> bool:
        return model in self.profiles
