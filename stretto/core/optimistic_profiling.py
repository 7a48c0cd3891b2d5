"""Synergy's optimistic profiling: a CPU × memory throughput matrix from a few measured points.

The CPU axis is measured (a few iterations at decreasing CPU counts, with the whole dataset
cacheable); the memory axis is derived analytically. With a cache holding a fraction f of the
dataset (an ideal, MinIO-like cache: every cached byte is a hit), an epoch must fetch
f·D from memory and (1−f)·D from storage, so

    epoch_time(c, m) = max(T_cpu(c), f·D / B_mem(c) + (1 − f)·D / B_storage),  f = min(1, m / D)

"Optimistic" because a real cache can only do worse: the profile never promises less than the
job will get for reasons of caching policy. The result is normalised to the GPU-proportional
point and summarised, as Synergy does, by the smallest allocation that reaches the best
throughput (the ideal demand) and that throughput (the speedup).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from stretto.core.profiles import ResourceSensitivity

DEFAULT_CPU_AXIS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 9.0, 12.0, 24.0)
DEFAULT_MEMORY_AXIS = (20.83, 62.5, 125.0, 187.5, 250.0)
NEAR_BEST = 0.99


def next_cpu_to_measure(previous_cpus: float, *, previous_epoch_s: float | None, epoch_s: float, gpus: int) -> float:
    """Synergy's probing walk on the CPU axis: halve the CPUs while the epoch time stays within 10 %
    of the previous point, otherwise step down by the number of GPUs."""
    if previous_epoch_s is not None and abs(epoch_s - previous_epoch_s) <= 0.10 * previous_epoch_s:
        return previous_cpus / 2.0
    return previous_cpus - gpus


def _interpolate(points: Sequence[tuple[float, float]], x: float) -> float:
    pts = sorted(points)
    if x <= pts[0][0]:
        return pts[0][1] * x / pts[0][0]  # below the first measurement: proportionally slower
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def optimistic_sensitivity(
    *,
    cpu_points: Sequence[tuple[float, float]],
    samples_per_epoch: float,
    dataset_gib: float,
    storage_gib_s: float,
    memory_gib_s_per_cpu: float,
    proportional_cpu_per_gpu: float,
    proportional_memory_gib_per_gpu: float,
    cpu_axis: Sequence[float] = DEFAULT_CPU_AXIS,
    memory_axis: Sequence[float] = DEFAULT_MEMORY_AXIS,
) -> ResourceSensitivity:
    """Build the matrix for one GPU from measured (CPU per GPU, samples per second) points.

    `storage_gib_s` is the storage bandwidth a GPU's share gets; `memory_gib_s_per_cpu` the
    memory-copy bandwidth of one CPU thread (B_mem(c) = c × that).
    """

    def epoch_seconds(cpus: float, memory: float) -> float:
        compute = samples_per_epoch / max(_interpolate(cpu_points, cpus), 1e-12)
        cached = min(1.0, memory / dataset_gib) if dataset_gib > 0 else 1.0
        fetch = cached * dataset_gib / (memory_gib_s_per_cpu * cpus) + (1 - cached) * dataset_gib / storage_gib_s
        return max(compute, fetch)

    reference = epoch_seconds(proportional_cpu_per_gpu, proportional_memory_gib_per_gpu)
    matrix = tuple(tuple(round(reference / epoch_seconds(c, m), 3) for m in memory_axis) for c in cpu_axis)
    best = max(max(row) for row in matrix)
    ideal = min(
        ((c, m) for i, c in enumerate(cpu_axis) for j, m in enumerate(memory_axis) if matrix[i][j] >= NEAR_BEST * best),
        key=lambda cm: (cm[0], cm[1]),
    )
    return ResourceSensitivity(
        cpu_per_gpu=tuple(cpu_axis),
        memory_gib_per_gpu=tuple(memory_axis),
        relative_throughput=matrix,
        ideal_cpu_per_gpu=ideal[0],
        ideal_memory_gib_per_gpu=ideal[1],
        ideal_speedup=best,
    )
