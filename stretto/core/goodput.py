"""Goodput: a job's useful progress per second at a batch size and GPU count (Pollux's job model).

goodput(b, g, x) = throughput(b, g) × efficiency(b, x): samples per second of batch b on g GPUs
(its placement and local batch, as measured) times the statistical efficiency of b at training
progress x (`stretto.core.statistical_efficiency`: the gradient noise scale from grad_sqr and
grad_var, which grows as training goes on, so large batches pay off late). Progress is counted
in *samples at the initial batch size B0*: a sample at batch b is worth efficiency(b, x) of one,
so a job's work is the same number whatever batch it runs, and a goodput job's `total_samples` are
in these units.

One `GoodputModel` per model (attached to its `ModelProfile.goodput`) serves the simulator (the
truth its progress follows), the predictor and the `stretto` policy (marginal goodput gains, the
batch chosen per GPU count). It is plain data: candidate batch sizes, their consolidated rates,
the per-epoch gradient statistics of the validated batch sizes, the epochs' progress boundaries.
A job's progress is read as a fraction of the model's whole run, so a job of any length reads the
noise scale at the same point of its training.

Two views of the future: `foresight=True` reads each coming epoch's own statistics (the truth: the
simulator's progress and the metric's T(g)); `foresight=False` assumes the statistics stay where
they are now, what a scheduler that measures the noise scale as the job runs (Pollux) can know.
Learning these statistics and rates online from the job's reports (the live-model issue) is not
built yet: the model here is the profile's.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from stretto.core.profiles import canonical_placement
from stretto.core.snapshots import JobState
from stretto.core.statistical_efficiency import statistical_efficiency

GradStats = tuple[tuple[float, float], ...]  # (grad_sqr, grad_var) per epoch


@dataclass(frozen=True, slots=True, eq=False)
class GoodputModel:
    """Throughput by (batch, GPUs) and statistical efficiency by (batch, progress) of one model.

    `rates[(batch, gpus)]`: samples/s on the consolidated placement (missing: that batch cannot
    run on that many GPUs); `placement_rates[(batch, placement)]`: on a measured placement;
    `shape_rates[(batch, nodes, gpus)]`: on a measured shape (Pollux's means by shape and its
    scalability runs), for a spread placement that was not measured itself.
    `grad_stats[b]`: per-epoch statistics measured at validated batch b (interpolated linearly
    between validated batches, as Pollux does). `epoch_ends`: cumulative progress (samples at B0)
    at the end of each epoch; the last is the whole run.
    """

    init_batch_size: int
    batch_sizes: tuple[int, ...]
    rates: Mapping[tuple[int, int], float]
    grad_stats: Mapping[int, GradStats]
    epoch_ends: tuple[float, ...]
    placement_rates: Mapping[tuple[int, tuple[int, ...]], float] = field(default_factory=dict)
    shape_rates: Mapping[tuple[int, int, int], float] = field(default_factory=dict)
    _tables: dict[tuple[int, int], _Tables] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.batch_sizes or list(self.batch_sizes) != sorted(set(self.batch_sizes)):
            raise ValueError("goodput model: batch sizes must be increasing")
        if not self.epoch_ends or any(b <= a for a, b in zip((0.0, *self.epoch_ends), self.epoch_ends, strict=False)):
            raise ValueError("goodput model: epoch ends must be increasing and positive")
        if not self.grad_stats or any(len(s) < len(self.epoch_ends) for s in self.grad_stats.values()):
            raise ValueError("goodput model: every validated batch needs statistics for every epoch")
        object.__setattr__(self, "_tables", {})

    @property
    def total_progress(self) -> float:
        return self.epoch_ends[-1]

    @property
    def gpu_counts(self) -> tuple[int, ...]:
        return tuple(sorted({g for _, g in self.rates}))

    def epoch_at(self, fraction: float) -> int:
        """The epoch a job `fraction` of the way through its run is in."""
        x = min(max(fraction, 0.0), 1.0) * self.total_progress
        return min(bisect.bisect_right(self.epoch_ends, x + 1e-9 * self.total_progress), len(self.epoch_ends) - 1)

    def stats(self, batch_size: float, epoch: int) -> tuple[float, float]:
        """(grad_sqr, grad_var) in `epoch`, linear between the validated batches around `batch_size`."""
        sizes = sorted(self.grad_stats)
        b = min(max(batch_size, sizes[0]), sizes[-1])
        i = bisect.bisect_left(sizes, b)
        hi = sizes[i]
        if hi == b or i == 0:
            return self.grad_stats[hi][epoch]
        lo = sizes[i - 1]
        w = (b - lo) / (hi - lo)
        (s0, v0), (s1, v1) = self.grad_stats[lo][epoch], self.grad_stats[hi][epoch]
        return s0 + w * (s1 - s0), v0 + w * (v1 - v0)

    def efficiency(self, batch_size: float, fraction: float) -> float:
        """Progress per sample at `batch_size`, `fraction` of the way through training (1 at B0)."""
        sqr, var = self.stats(batch_size, self.epoch_at(fraction))
        return statistical_efficiency(batch_size, self.init_batch_size, sqr, var)

    def throughput_on(self, batch_size: int, gpus_by_node: tuple[int, ...]) -> float:
        """Samples/s on a placement: measured; else its shape's (nodes capped at 16, as Pollux), else the nearest
        measured node count's for its GPUs (more nodes on a tie); else the consolidated rate; 0: cannot run."""
        placement = canonical_placement(gpus_by_node)
        measured = self.placement_rates.get((batch_size, placement))
        if measured is not None:
            return measured
        gpus, nodes = sum(placement), min(len(placement), 16)
        consolidated = self.rates.get((batch_size, gpus), 0.0)
        if consolidated <= 0 or not self.shape_rates:
            return consolidated
        shapes = [n for n in range(1, min(gpus, 16) + 1) if (batch_size, n, gpus) in self.shape_rates]
        if not shapes:
            return consolidated
        nearest = min(shapes, key=lambda n: (abs(n - nodes), -n))
        return self.shape_rates[(batch_size, nearest, gpus)]

    def goodput(self, batch_size: int, gpus: int, fraction: float) -> float:
        """Progress (samples at B0) per second on `gpus` consolidated GPUs."""
        return self.rates.get((batch_size, gpus), 0.0) * self.efficiency(batch_size, fraction)

    def best_batch(self, gpus: int, fraction: float, batch_range: tuple[int, int] | None = None) -> int | None:
        """The candidate batch in `batch_range` with the most goodput on `gpus` GPUs now (None: none runs)."""
        t = self._table(batch_range)
        g = t.row(gpus)
        if g is None:
            return None
        e = self.epoch_at(fraction)
        return t.batches[int(t.arg[g, e])] if t.best[g, e] > 0 else None

    def seconds(self, gpus: int, start: float, end: float, *, foresight: bool,
                batch_range: tuple[int, int] | None = None) -> float:
        """Seconds from progress fraction `start` to `end` on `gpus` GPUs at the best batch of each epoch.

        Without foresight every remaining epoch runs at the goodput of the current one (`start`'s).
        Times are for the model's whole run; scale by the job's work over `total_progress`.
        """
        if end <= start:
            return 0.0
        t = self._table(batch_range)
        g = t.row(gpus)
        if g is None:
            return float("inf")
        x0, x1 = start * self.total_progress, end * self.total_progress
        e0 = self.epoch_at(start)
        if not foresight:
            return (x1 - x0) / t.best[g, e0] if t.best[g, e0] > 0 else float("inf")
        return t.time_to(g, x1) - t.time_to(g, x0)

    def _table(self, batch_range: tuple[int, int] | None) -> _Tables:
        key = batch_range or (self.batch_sizes[0], self.batch_sizes[-1])
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = _Tables.build(self, key)
        return table


@dataclass(frozen=True, slots=True)
class _Tables:
    """Best goodput and its batch per (GPU count, epoch), and cumulative seconds at the best batch."""

    batches: tuple[int, ...]
    gpus: tuple[int, ...]
    best: np.ndarray  # [gpu row, epoch] progress per second
    arg: np.ndarray  # [gpu row, epoch] index into batches
    ends: np.ndarray  # epoch ends (progress)
    cumulative: np.ndarray  # [gpu row, epoch + 1] seconds from 0 to each epoch's start

    @classmethod
    def build(cls, model: GoodputModel, batch_range: tuple[int, int]) -> _Tables:
        lo, hi = batch_range
        batches = tuple(b for b in model.batch_sizes if lo <= b <= hi) or (
            min(model.batch_sizes, key=lambda b: abs(b - lo)),)
        gpus = model.gpu_counts
        epochs = len(model.epoch_ends)
        rate = np.array([[model.rates.get((b, g), 0.0) for b in batches] for g in gpus])
        eff = np.array([[statistical_efficiency(b, model.init_batch_size, *model.stats(b, e)) for e in range(epochs)]
                        for b in batches])
        goodput = rate[:, :, None] * eff[None, :, :]  # [g, b, e]
        arg = goodput.argmax(axis=1)
        best = goodput.max(axis=1)
        ends = np.array(model.epoch_ends)
        width = np.diff(np.concatenate([[0.0], ends]))
        with np.errstate(divide="ignore"):
            per_epoch = np.where(best > 0, width[None, :] / np.where(best > 0, best, 1.0), np.inf)
        cumulative = np.concatenate([np.zeros((len(gpus), 1)), np.cumsum(per_epoch, axis=1)], axis=1)
        return cls(batches, gpus, best, arg, ends, cumulative)

    def row(self, gpus: int) -> int | None:
        """The table row of `gpus`, or of the largest tabulated count below it (more GPUs than measured)."""
        i = bisect.bisect_right(self.gpus, gpus) - 1
        return i if i >= 0 else None

    def time_to(self, g: int, x: float) -> float:
        e = min(int(np.searchsorted(self.ends, x, side="right")), len(self.ends) - 1)
        start = self.ends[e - 1] if e > 0 else 0.0
        partial = (x - start) / self.best[g, e] if self.best[g, e] > 0 else (0.0 if x <= start else np.inf)
        return float(self.cumulative[g, e] + partial)


def job_seconds(job: JobState, gpus: int, start: float, end: float, *, foresight: bool) -> float:
    """Seconds of `job`'s run from progress fraction `start` to `end` on `gpus` GPUs at the goodput-best batch
    in its declared range (`GoodputModel.seconds`, scaled by its work over the model's)."""
    model = job.profile.goodput
    if model is None:
        raise ValueError(f"job {job.job_id}: its profile has no goodput model")
    seconds = model.seconds(gpus, start, end, foresight=foresight, batch_range=job.batch_size_range)
    return seconds * job.total_samples / model.total_progress


Forecast = Literal["profile", "current"]


def remaining_seconds(job: JobState, gpus: int, forecast: Forecast = "profile") -> float:
    """R(g): the rest of the run at the profile's noise scale epoch by epoch ("profile", as the throughput is the
    profile's), or at today's all the way ("current": what Pollux's scheduler knows from measuring it)."""
    return job_seconds(job, gpus, job.progress_fraction, 1.0, foresight=forecast == "profile")


def fastest_remaining_seconds(job: JobState, forecast: Forecast = "profile") -> float:
    """R at the job's fastest GPU count in its range: a goodput job need never run slower (more GPUs can be
    slower, for the smallest batch they can run may be past the noise scale)."""
    return min(remaining_seconds(job, g, forecast) for g in range(job.min_gpus, job.max_gpus + 1, job.gpus_per_worker))


def lifetime_seconds(job: JobState, gpus: int, forecast: Forecast = "profile") -> float:
    """T(g) as known so far: the part done at the statistics it ran through, the rest by `forecast`."""
    return job_seconds(job, gpus, 0.0, job.progress_fraction, foresight=True) + remaining_seconds(job, gpus, forecast)


def best_batch(job: JobState, gpus: int) -> int | None:
    """The batch with the most goodput on `gpus` GPUs now, in the job's range (None: it cannot run there)."""
    model = job.profile.goodput
    return None if model is None else model.best_batch(gpus, job.progress_fraction, job.batch_size_range)
