"""A job's fair share of the cluster and its run time on it: the one definition of "fair".

Themis' finish-time fairness, extended to elastic jobs. With N jobs contending for G GPUs, a
job's fair share is s = G/N GPUs. What the job can do with s depends on its elastic range
[lo, hi] = [min_workers, max_workers] × gpus_per_worker and its own scaling curve: T(g), the
seconds its whole work takes on g GPUs (every whole-worker count g in [lo, hi], at the batch
sizes of its schedule, at the GPU-proportional CPU and memory):

* s ≥ hi: it cannot use more than hi GPUs: T_fair = T(hi);
* lo ≤ s < hi: s lies between two whole-worker counts g1 ≤ s < g2 = g1 + gpus_per_worker; the
  share is delivered by time-sharing between them, a fraction α = (s − g1)/(g2 − g1) of the time
  on g2, so the job's speeds mix: 1/T_fair = (1 − α)/T(g1) + α/T(g2);
* s < lo: it cannot run on fewer than lo GPUs, so it runs on lo GPUs a fraction s/lo of the
  time: T_fair = T(lo)·lo/s.

For a rigid one-GPU job T_fair = T_iso·max(1, N/G), Shockwave's and Themis' ideal. The metric
(`stretto.sim.metrics`) and the `stretto` policy's deadlines both call `fair_seconds`; they differ
only in the N they know (the metric: the time-average over the job's lifetime; the policy: its
running estimate of that average).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from stretto.core.epoch_schedules import seconds_for
from stretto.core.profiles import ModelProfile

# ((GPUs, seconds for the work on that many GPUs), ...) for each whole-worker count, GPUs increasing.
ScalingCurve = tuple[tuple[int, float], ...]


def scaling_curve(
    profile: ModelProfile, samples_by_batch_size: Mapping[int, float], *, min_workers: int, max_workers: int,
    gpus_per_worker: int, scale: float = 1.0,
) -> ScalingCurve:
    """T(g) for g = n·gpus_per_worker, n = min_workers..max_workers, times `scale` (a measured calibration)."""
    return tuple(
        (n * gpus_per_worker, scale * seconds_for(profile, dict(samples_by_batch_size), gpus=n * gpus_per_worker))
        for n in range(min_workers, max_workers + 1)
    )


def seconds_at(curve: Sequence[tuple[int, float]], share_gpus: float) -> float:
    """Seconds the curve's work takes on a share of `share_gpus` GPUs' worth of time (module doc)."""
    if not curve:
        raise ValueError("empty scaling curve")
    if share_gpus <= 0:
        return math.inf
    lo, t_lo = curve[0]
    if share_gpus < lo:
        return t_lo * lo / share_gpus
    for (g1, t1), (g2, t2) in itertools.pairwise(curve):
        if g1 <= share_gpus < g2:
            alpha = (share_gpus - g1) / (g2 - g1)
            speed = (1.0 - alpha) / t1 + alpha / t2 if t1 > 0 and t2 > 0 else math.inf
            return 1.0 / speed if speed > 0 else math.inf
    return curve[-1][1]


def fair_share_gpus(total_gpus: float, contention: float) -> float:
    """1/N of the cluster's GPUs, N the jobs contending (the job itself included, so N ≥ 1)."""
    return total_gpus / max(1.0, contention)


def fair_seconds(curve: Sequence[tuple[int, float]], *, total_gpus: float, contention: float) -> float:
    """T_fair: the curve's work on 1/N of `total_gpus`, N = `contention`."""
    return seconds_at(curve, fair_share_gpus(total_gpus, contention))
