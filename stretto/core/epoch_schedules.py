"""Batch-size schedules: which batch size a job uses in which epoch, and what that costs in time.

A schedule is run-length encoded as ((first_epoch, batch_size), ...), sorted by epoch. Work is
counted in samples, so a change of batch size keeps the number of epochs (Shockwave's rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from stretto.core.profiles import ModelProfile

Schedule = Sequence[tuple[int, int]]


def batch_size_at(schedule: Schedule, epoch: int, default: int) -> int:
    current = default
    for first_epoch, batch_size in schedule:
        if first_epoch > epoch:
            break
        current = batch_size
    return current


def samples_by_batch_size(
    schedule: Schedule,
    *,
    samples_per_epoch: float,
    start_sample: float,
    end_sample: float,
    default_batch_size: int,
) -> dict[int, float]:
    """Samples in [start_sample, end_sample) grouped by the batch size the schedule gives them."""
    segments = list(schedule) or [(0, default_batch_size)]
    if segments[0][0] > 0:
        segments.insert(0, (0, default_batch_size))
    out: dict[int, float] = {}
    for k, (first_epoch, batch_size) in enumerate(segments):
        seg_start = first_epoch * samples_per_epoch
        seg_end = segments[k + 1][0] * samples_per_epoch if k + 1 < len(segments) else float("inf")
        lo, hi = max(seg_start, start_sample), min(seg_end, end_sample)
        if hi > lo:
            out[batch_size] = out.get(batch_size, 0.0) + (hi - lo)
    return out


def seconds_for(
    profile: ModelProfile,
    samples: dict[int, float],
    *,
    gpus: int,
    cpu_per_gpu: float | None = None,
    memory_gib_per_gpu: float | None = None,
) -> float:
    total = 0.0
    for batch_size, n in samples.items():
        rate = profile.throughput(batch_size, gpus, cpu_per_gpu, memory_gib_per_gpu)
        total += n / rate if rate > 0 else float("inf")
    return total
