"""Pollux's measured traces (petuum/adaptdl `osdi21-artifact`, simulator/traces/<app>/) as Stretto profiles.

A folder of application folders, each with
- `placements.csv` `placement,local_bsz,step_time,sync_time`: the digits of `placement` are
  replicas per node (`24`: two nodes, 2 and 4 GPUs);
- `scalability.csv` `num_nodes,num_replicas,local_bsz,step_time,sync_time`: larger shapes;
- `validation-<batch>.csv` `progress,iteration,metric,grad_sqr,grad_var`, one row per epoch.

Read as Pollux's simulator reads them, so that a rigid job here takes exactly as long as there:

- Step time of a placement at a local batch: linear in the local batch along the placement's
  rows (after rotating the placement to its smallest form); a placement that was not measured
  reads the rows of its (nodes, replicas) shape, the placements' means by shape plus
  scalability.csv. Pollux interpolates those with a Delaunay triangulation over (nodes,
  replicas, local batch); on a measured shape's line that is the same line. A consolidated count
  with no measured shape (e.g. 20 GPUs on 5 nodes) is interpolated between measured counts, an
  approximation of Pollux's. Placements are Pollux's consolidated ones on 4-GPU nodes (4, 4, …, rest),
  which its TunedJobs configurations assume.
- A target batch B on g replicas runs local batches of ⌈B/g⌉ split into accumulation steps of at
  most the largest measured local batch (one GPU above the initial batch always accumulates at
  least once, as in Pollux); a step takes step + (step − sync) × accumulation steps.
- Progress is counted in steps at the initial batch B0 (the smallest validated batch): one step at
  batch b in epoch e makes `progress_gain(b, B0, grad_sqr, grad_var)` of it, the statistics read
  for epoch e and interpolated linearly between the validated batches around b. A job ends after
  the last epoch every validation file has (progress boundaries: the smallest over the files).
- Work: a rigid job at batch b needs Σₑ Δprogressₑ / gainₑ steps, i.e. that × b samples. This is
  exact for a fixed batch size (efficiency varies by epoch but the batch never does); a job that
  changed batch mid-training would need the per-epoch form instead. Pollux's simulator rounds
  each epoch's time to whole seconds; the work here includes that rounding (`seconds_to_finish`).

Samples per second for (B, g) are b / (time of one step), b being the batch the job really runs
(g × atomic batch × (accumulation + 1), which rounding can make a little larger than B).
"""

from __future__ import annotations

import bisect
import csv
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stretto.core.goodput import GoodputModel
from stretto.core.profiles import ModelProfile, ProfileBook, canonical_placement
from stretto.core.statistical_efficiency import progress_gain

PLACEMENTS_COLUMNS = ("placement", "local_bsz", "step_time", "sync_time")
SCALABILITY_COLUMNS = ("num_nodes", "num_replicas", "local_bsz", "step_time", "sync_time")
VALIDATION_COLUMNS = ("progress", "iteration", "metric", "grad_sqr", "grad_var")
GPUS_PER_NODE = 4
# GPU counts tabulated in each profile (where the traces measure their consolidated placement): Pollux's 16 × 4.
PROFILE_GPU_COUNTS = tuple(range(1, 65))
# Pollux's applications.py caps yolov3's local batch at 8 (its traces go to 16); the others use the traces' range.
POLLUX_MAX_LOCAL_BSZ: Mapping[str, int] = {"yolov3": 8}
# Batch sizes Pollux's goodput optimiser tries between the smallest and the largest validated one (geometric).
GOODPUT_CANDIDATES = 50
_VALIDATION_NAME = re.compile(r"^validation-(\d+)\.csv$")


class PolluxTraceError(ValueError):
    """A malformed Pollux trace file; the message names the file, the line and the field."""


@dataclass(frozen=True, slots=True)
class StepTimes:
    """(local batch, step time s, sync time s) rows of one placement or shape, local batch increasing."""

    rows: tuple[tuple[float, float, float], ...]

    def at(self, local_bsz: float) -> tuple[float, float] | None:
        """Linear in the local batch; None outside the measured range (Pollux's interp1d refuses it)."""
        xs = [r[0] for r in self.rows]
        if not xs or local_bsz < xs[0] - 1e-9 or local_bsz > xs[-1] + 1e-9:
            return None
        i = bisect.bisect_left(xs, local_bsz - 1e-9)
        if i == 0 or abs(xs[i] - local_bsz) <= 1e-9:
            return self.rows[i][1], self.rows[i][2]
        (x0, s0, c0), (x1, s1, c1) = self.rows[i - 1], self.rows[i]
        w = (local_bsz - x0) / (x1 - x0)
        return s0 + w * (s1 - s0), c0 + w * (c1 - c0)


@dataclass(frozen=True, slots=True)
class EpochStats:
    progress: float  # cumulative progress at the end of the epoch
    grad_sqr: float
    grad_var: float


@dataclass(frozen=True, slots=True)
class RigidConfig:
    """How Pollux runs a target batch on g replicas: atomic batch, accumulation steps, real batch, step time."""

    atomic_bsz: int
    accum_steps: int
    batch_size: int
    step_s: float


@dataclass(frozen=True, slots=True)
class PolluxApplication:
    name: str
    placements: Mapping[str, StepTimes]  # normalised placement id -> rows
    shapes: Mapping[tuple[int, int], StepTimes]  # (nodes, replicas) -> rows
    validation: Mapping[int, tuple[EpochStats, ...]]  # batch size -> epochs
    min_local_bsz: float
    max_local_bsz: float

    @property
    def init_batch_size(self) -> int:
        return min(self.validation)

    @property
    def max_batch_size(self) -> int:
        return max(self.validation)

    @property
    def epochs(self) -> int:
        return min(len(v) for v in self.validation.values())

    def progress_at(self, epoch: int) -> float:
        """Progress at the start of `epoch` (the smallest over the validation files, as Pollux)."""
        return 0.0 if epoch == 0 else min(v[epoch - 1].progress for v in self.validation.values())

    def step_times(self, placement: tuple[int, ...], local_bsz: float) -> tuple[float, float] | None:
        """(step, sync) seconds of one step of `local_bsz` per replica on `placement`; None if unmeasured."""
        parts = tuple(p for p in placement if p)
        if not parts:
            return None
        rotated = min(parts[i:] + parts[:i] for i in range(len(parts)))
        rows = self.placements.get("".join(map(str, rotated)))
        if rows is None:
            rows = self.shapes.get((min(len(parts), 16), sum(parts)))
        return None if rows is None else rows.at(local_bsz)

    def _between_measured_counts(self, gpus: int, local_bsz: float) -> tuple[float, float] | None:
        """(step, sync) for an unmeasured consolidated count: linear in the GPU count between the nearest
        measured ones, at the same local batch. Pollux triangulates (nodes, replicas, local batch) instead,
        so this is close to its figure, not equal. Every TunedJobs count (1-16, 24, 32, 48) is measured;
        elastic jobs (Optimus) run at the others."""
        below = next((g for g in range(gpus - 1, 0, -1) if self.step_times(consolidated(g), local_bsz)), None)
        above = next((g for g in range(gpus + 1, 16 * GPUS_PER_NODE + 1)
                      if self.step_times(consolidated(g), local_bsz)), None)
        if below is None or above is None:
            return None
        lo, hi = self.step_times(consolidated(below), local_bsz), self.step_times(consolidated(above), local_bsz)
        assert lo is not None and hi is not None
        w = (gpus - below) / (above - below)
        return lo[0] + w * (hi[0] - lo[0]), lo[1] + w * (hi[1] - lo[1])

    def rigid_config(self, batch_size: int, gpus: int) -> RigidConfig | None:
        """Pollux's run of a fixed target batch on `gpus` consolidated replicas; None where it cannot run."""
        local = math.ceil(batch_size / gpus - 1e-8)
        if local < self.min_local_bsz:
            return None
        accum = math.ceil(local / self.max_local_bsz - 1e-8) - 1
        if gpus == 1 and batch_size > self.init_batch_size:
            accum = max(1, accum)
        atomic = math.ceil(local / (accum + 1) - 1e-8)
        atomic = min(atomic, int(self.max_batch_size / (gpus * (accum + 1))))
        times = self.step_times(consolidated(gpus), atomic)
        if times is None:
            times = self._between_measured_counts(gpus, atomic)
        if times is None or atomic <= 0:
            return None
        step, sync = times
        return RigidConfig(atomic, accum, gpus * atomic * (accum + 1), step + (step - sync) * accum)

    def grad_stats(self, batch_size: float, epoch: int) -> tuple[float, float]:
        """(grad_sqr, grad_var) in `epoch`, linear between the validated batches around `batch_size`."""
        sizes = sorted(self.validation)
        lower = max((b for b in sizes if b <= batch_size), default=None)
        upper = min((b for b in sizes if b >= batch_size), default=None)
        if lower is None or upper is None:
            raise ValueError(f"{self.name}: batch {batch_size} outside the validated {sizes[0]}-{sizes[-1]}")
        lo, hi = self.validation[lower][epoch], self.validation[upper][epoch]
        if lower == upper:
            return lo.grad_sqr, lo.grad_var
        w = (batch_size - lower) / (upper - lower)
        return lo.grad_sqr + w * (hi.grad_sqr - lo.grad_sqr), lo.grad_var + w * (hi.grad_var - lo.grad_var)

    def steps_to_finish(self, batch_size: float) -> float:
        """Steps at a fixed real batch to finish: Σ over epochs of Δprogress / gain (exact for a fixed batch)."""
        total = 0.0
        for epoch in range(self.epochs):
            sqr, var = self.grad_stats(batch_size, epoch)
            gain = progress_gain(batch_size, self.init_batch_size, sqr, var)
            total += (self.progress_at(epoch + 1) - self.progress_at(epoch)) / gain
        return total

    def seconds_to_finish(self, config: RigidConfig) -> float:
        """Seconds of training a rigid job needs: Σ over epochs of round(Δprogress / gain × step time).

        Pollux's simulator rounds the time to each epoch boundary to whole seconds, and every epoch
        starts on a whole second there (rounds, restarts and earlier epochs are all whole), so the
        rounding is per epoch and exact; it is worth up to ±0.5 s an epoch (cifar10: 897 -> 910 s).
        """
        total = 0
        for epoch in range(self.epochs):
            sqr, var = self.grad_stats(config.batch_size, epoch)
            gain = progress_gain(config.batch_size, self.init_batch_size, sqr, var)
            total += round((self.progress_at(epoch + 1) - self.progress_at(epoch)) / gain * config.step_s)
        return float(total)

    def rigid_work(self, batch_size: int, gpus: int) -> tuple[float, float]:
        """(samples to process, samples per second) of a rigid job at `batch_size` on `gpus` GPUs."""
        config = self.rigid_config(batch_size, gpus)
        if config is None:
            raise ValueError(f"{self.name}: batch {batch_size} on {gpus} GPUs is outside the measured placements")
        rate = config.batch_size / config.step_s
        return self.seconds_to_finish(config) * rate, rate

    def goodput_model(self) -> GoodputModel:
        """Goodput as Pollux's jobs run: batches B0..Bmax (50 geometric candidates, as Pollux's optimiser samples,
        and the validated sizes), each split into local batches and accumulation steps as `rigid_config` does, on
        every consolidated GPU count and measured placement; progress in samples at B0 (Pollux's steps × B0)."""
        grid = {round(float(b)) for b in np.geomspace(self.init_batch_size, self.max_batch_size, GOODPUT_CANDIDATES)}
        batches = tuple(sorted(grid | set(self.validation)))
        rates: dict[tuple[int, int], float] = {}
        on_placement: dict[tuple[int, tuple[int, ...]], float] = {}
        on_shape: dict[tuple[int, int, int], float] = {}
        for batch in batches:
            for gpus in PROFILE_GPU_COUNTS:
                config = self.rigid_config(batch, gpus)
                if config is not None:
                    rates[(batch, gpus)] = config.batch_size / config.step_s
                    for nodes in range(1, min(gpus, 16) + 1):
                        times = self.shapes[(nodes, gpus)].at(config.atomic_bsz) if (nodes, gpus) in self.shapes \
                            else None
                        if times is not None:
                            step_s = times[0] + (times[0] - times[1]) * config.accum_steps
                            on_shape[(batch, nodes, gpus)] = config.batch_size / step_s
            on_placement.update(self._placement_rates(batch))
        b0 = self.init_batch_size
        stats = {b: tuple((e.grad_sqr, e.grad_var) for e in epochs[:self.epochs])
                 for b, epochs in self.validation.items()}
        ends = tuple(self.progress_at(e + 1) * b0 for e in range(self.epochs))
        return GoodputModel(init_batch_size=b0, batch_sizes=batches, rates=rates, grad_stats=stats, epoch_ends=ends,
                            placement_rates=on_placement, shape_rates=on_shape)

    def _placement_rates(self, batch: int) -> dict[tuple[int, tuple[int, ...]], float]:
        """samples/s at `batch` on every measured placement the batch can run on."""
        rates: dict[tuple[int, tuple[int, ...]], float] = {}
        for placement_id, rows in self.placements.items():
            placement = tuple(int(d) for d in placement_id)
            config = self.rigid_config(batch, sum(placement))
            times = None if config is None else rows.at(config.atomic_bsz)
            if config is not None and times is not None:
                step_s = times[0] + (times[0] - times[1]) * config.accum_steps
                rates[(batch, canonical_placement(placement))] = config.batch_size / step_s
        return rates

    def profile(self, source: str) -> ModelProfile:
        """samples/s for every validated batch × tabulated GPU count that Pollux's traces can run (consolidated),
        and on every measured placement (`placement_rates`: a spread job runs as slowly as Pollux's does)."""
        rates: dict[tuple[int, int], float] = {}
        on_placement: dict[tuple[int, tuple[int, ...]], float] = {}
        for batch in sorted(self.validation):
            for gpus in PROFILE_GPU_COUNTS:
                config = self.rigid_config(batch, gpus)
                if config is not None:
                    rates[(batch, gpus)] = config.batch_size / config.step_s
            on_placement.update(self._placement_rates(batch))
        return ModelProfile(model=self.name, samples_per_second=rates, default_batch_size=self.init_batch_size,
                            source=source, placement_rates=on_placement, goodput=self.goodput_model())


def consolidated(gpus: int) -> tuple[int, ...]:
    """Pollux's placement for a GPU count: full 4-GPU nodes, then the rest (6 -> (4, 2))."""
    full, rest = divmod(gpus, GPUS_PER_NODE)
    return (GPUS_PER_NODE,) * full + ((rest,) if rest else ())


def _rows(path: Path, columns: tuple[str, ...]) -> Iterable[tuple[int, dict[str, str]]]:
    if not path.is_file():
        raise PolluxTraceError(f"{path}: missing")
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != columns:
            raise PolluxTraceError(f"{path}:1: header {header!r}, expected {','.join(columns)}")
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(columns):
                raise PolluxTraceError(f"{path}:{number}: expected {len(columns)} fields, got {len(row)}")
            yield number, dict(zip(columns, row, strict=True))


def _number(path: Path, number: int, row: dict[str, str], field: str, *, positive: bool = False) -> float:
    try:
        value = float(row[field])
    except ValueError:
        raise PolluxTraceError(f"{path}:{number}: field '{field}': {row[field]!r} is not a number") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise PolluxTraceError(f"{path}:{number}: field '{field}': {row[field]!r} must be {'>' if positive else '≥'} 0")
    return value


def _step_rows(path: Path, number: int, row: dict[str, str]) -> tuple[float, float, float]:
    local = _number(path, number, row, "local_bsz", positive=True)
    return local, _number(path, number, row, "step_time", positive=True), _number(path, number, row, "sync_time")


def _table(rows: dict[object, list[tuple[float, float, float]]]) -> dict[object, StepTimes]:
    return {key: StepTimes(tuple(sorted(r))) for key, r in rows.items()}


def read_application(folder: Path, max_local_bsz: int | None = None) -> PolluxApplication:
    """One application folder; every malformed line is a `PolluxTraceError` naming file, line and field."""
    folder = Path(folder)
    placement_rows: dict[str, list[tuple[float, float, float]]] = {}
    shape_means: dict[tuple[int, int, float], list[tuple[float, float]]] = {}
    path = folder / "placements.csv"
    for number, row in _rows(path, PLACEMENTS_COLUMNS):
        placement = row["placement"].strip()
        if not placement.isdigit() or "0" in placement:
            raise PolluxTraceError(f"{path}:{number}: field 'placement': {placement!r} is not replicas per node (1-9)")
        local, step, sync = _step_rows(path, number, row)
        placement_rows.setdefault(placement, []).append((local, step, sync))
        shape = (len(placement), sum(map(int, placement)), local)
        shape_means.setdefault(shape, []).append((step, sync))
    if not placement_rows:
        raise PolluxTraceError(f"{path}: no rows")
    shapes: dict[tuple[int, int], list[tuple[float, float, float]]] = {}
    for (nodes, replicas, local), times in shape_means.items():
        mean = (sum(t[0] for t in times) / len(times), sum(t[1] for t in times) / len(times))
        shapes.setdefault((nodes, replicas), []).append((local, *mean))
    path = folder / "scalability.csv"
    for number, row in _rows(path, SCALABILITY_COLUMNS):
        nodes = int(_number(path, number, row, "num_nodes", positive=True))
        replicas = int(_number(path, number, row, "num_replicas", positive=True))
        shapes.setdefault((nodes, replicas), []).append(_step_rows(path, number, row))
    validation: dict[int, tuple[EpochStats, ...]] = {}
    for path in sorted(folder.glob("validation-*.csv")):
        match = _VALIDATION_NAME.match(path.name)
        if not match or int(match.group(1)) <= 0:
            raise PolluxTraceError(f"{path}: name must be validation-<batch size>.csv")
        epochs = []
        for number, row in _rows(path, VALIDATION_COLUMNS):
            epochs.append(EpochStats(_number(path, number, row, "progress", positive=True),
                                     _number(path, number, row, "grad_sqr"), _number(path, number, row, "grad_var")))
        if not epochs:
            raise PolluxTraceError(f"{path}: no epochs")
        validation[int(match.group(1))] = tuple(epochs)
    if not validation:
        raise PolluxTraceError(f"{folder}: no validation-<batch size>.csv")
    locals_ = [r[0] for rows in placement_rows.values() for r in rows]
    return PolluxApplication(
        name=folder.name,
        placements=_table(placement_rows),  # type: ignore[arg-type]
        shapes=_table(shapes),  # type: ignore[arg-type]
        validation=dict(sorted(validation.items())),
        min_local_bsz=min(locals_),
        max_local_bsz=float(max_local_bsz) if max_local_bsz is not None else max(locals_),
    )


def _has_trace_files(folder: Path) -> bool:
    return (folder / "placements.csv").exists() or (folder / "scalability.csv").exists() or any(
        folder.glob("validation-*.csv"))


def is_traces_folder(path: Path) -> bool:
    """A folder of application folders with Pollux's trace files (its simulator/traces)."""
    path = Path(path)
    return path.is_dir() and any(_has_trace_files(child) for child in path.iterdir() if child.is_dir())


def read_applications(
    folder: Path, max_local_bsz: Mapping[str, int] = POLLUX_MAX_LOCAL_BSZ
) -> dict[str, PolluxApplication]:
    """Every application folder under `folder` (a folder with any trace file must have them all)."""
    folder = Path(folder)
    apps: dict[str, PolluxApplication] = {}
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        if _has_trace_files(child):
            apps[child.name] = read_application(child, max_local_bsz.get(child.name))
    if not apps:
        raise PolluxTraceError(f"{folder}: no application folders with placements.csv")
    return apps


def load_pollux_profiles(folder: Path) -> ProfileBook:
    folder = Path(folder)
    apps = read_applications(folder)
    return ProfileBook({name: app.profile(f"{folder / name} [Pollux traces]") for name, app in apps.items()},
                       source=str(folder))
