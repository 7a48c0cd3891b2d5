"""Co-location: how fast two jobs run when they share one GPU, relative to running alone.

Model. Two single-GPU jobs, each known by (model, batch size), share one GPU; each then runs at a
fraction of its isolated speed: `relative_speeds(a, b) = (s_a, s_b)`, s = samples/s shared ÷
samples/s alone, in [0, 1]. The sum s_a + s_b is the pair's combined normalised throughput: above 1
the GPU does more work shared than either job does on it alone (each fills the other's idle cycles:
small batches, input-bound pipelines); at or below 1 sharing only slices time. A job "cannot use a
whole GPU" when a partner barely slows it down, so only pairs whose sum exceeds a threshold (1.1 by
default, `candidate`) are worth sharing. The relative speed multiplies whatever isolated rate the
job model gives the job (`ModelProfile.throughput`), so co-location composes with the CPU/memory
sensitivity.

Data. Gavel's measurements as Shockwave ships them (`tacc_throughputs.json`): for a GPU type and a
job key "('ResNet-18 (batch size 16)', 1)", "null" is the isolated rate (steps/s) and another
single-GPU job key maps to [this job's rate, the other's] while both share one GPU. Relative speed =
shared rate ÷ isolated rate of the same table. Pairs missing from the table, or measured as 0 (they
did not fit in GPU memory together), are not shareable; a batch size that was not measured reads the
model's nearest measured one, as `ModelProfile` does. Model names are Shockwave's ("ResNet-18",
"LM", ...), the names the Shockwave and combined workloads use.

Which GPU type: `p100` by default. Its 676 single-GPU pairs agree with its isolated numbers (no job
is faster sharing than alone). The `v100` table mixes campaigns: its pair entries equal the
unconsolidated table's while its isolated entries were re-measured, and 257 of its 529 pairs claim a
job runs faster sharing than alone (Transformer, batch 128: 3.2×). Contention is a property of the
pair, so the p100 ratios are applied to the V100 rates of the job model; any value above 1 (any
table) is capped at 1.
"""

from __future__ import annotations

import ast
import bisect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

DEFAULT_GPU_TYPE = "p100"
DEFAULT_THRESHOLD = 1.1
TABLE_FILE = "tacc_throughputs.json"

JobKey = tuple[str, int]  # (model, batch size)


@dataclass(frozen=True, slots=True, eq=False)
class CoLocationTable:
    """Relative speeds of measured pairs: `speeds[(model_a, batch_a, model_b, batch_b)] = (s_a, s_b)`."""

    speeds: Mapping[tuple[str, int, str, int], tuple[float, float]]
    source: str = ""
    _batch_sizes: dict[str, tuple[int, ...]] = field(init=False, repr=False)
    _resolved: dict[tuple[JobKey, JobKey], tuple[float, float] | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sizes: dict[str, set[int]] = {}
        for model, batch, other, other_batch in self.speeds:
            sizes.setdefault(model, set()).add(batch)
            sizes.setdefault(other, set()).add(other_batch)
        object.__setattr__(self, "_batch_sizes", {m: tuple(sorted(b)) for m, b in sizes.items()})
        object.__setattr__(self, "_resolved", {})

    def _nearest(self, model: str, batch_size: int) -> int | None:
        sizes = self._batch_sizes.get(model)
        if not sizes:
            return None
        i = bisect.bisect_left(sizes, batch_size)
        return min(sizes[max(0, i - 1) : i + 1], key=lambda b: (abs(b - batch_size), b))

    def relative_speeds(self, a: JobKey, b: JobKey) -> tuple[float, float] | None:
        """(a's speed, b's speed) sharing one GPU, each relative to running alone; None if not measured."""
        key = (a, b)
        if key not in self._resolved:
            ba, bb = self._nearest(*a), self._nearest(*b)
            speeds = None
            if ba is not None and bb is not None:
                speeds = self.speeds.get((a[0], ba, b[0], bb))
                if speeds is None and (b[0], bb, a[0], ba) in self.speeds:
                    sb, sa = self.speeds[(b[0], bb, a[0], ba)]
                    speeds = (sa, sb)
            self._resolved[key] = speeds
        return self._resolved[key]

    def candidate(self, a: JobKey, b: JobKey, threshold: float = DEFAULT_THRESHOLD) -> tuple[float, float] | None:
        """The pair's relative speeds if their sum exceeds `threshold` (worth sharing a GPU), else None."""
        speeds = self.relative_speeds(a, b)
        return speeds if speeds is not None and sum(speeds) > threshold else None


def _job_key(text: str) -> JobKey | None:
    """"('ResNet-18 (batch size 16)', 1)" → ("ResNet-18", 16); None for multi-GPU keys and models without a batch."""
    job_type, gpus = ast.literal_eval(text)
    if int(gpus) != 1 or " (batch size " not in job_type:
        return None
    model, _, rest = job_type.partition(" (batch size ")
    return model, int(rest.rstrip(")"))


def load_colocation_table(path: Path, gpu_type: str = DEFAULT_GPU_TYPE) -> CoLocationTable:
    """Relative speeds from Shockwave's `tacc_throughputs.json` (a file, or a folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / TABLE_FILE
    data = json.loads(path.read_text())
    if gpu_type not in data:
        raise ValueError(f"{path}: no GPU type {gpu_type!r}; has {', '.join(sorted(data))}")
    table = data[gpu_type]
    isolated = {k: float(v["null"]) for k, v in table.items()}
    speeds: dict[tuple[str, int, str, int], tuple[float, float]] = {}
    for key, entries in table.items():
        a = _job_key(key)
        if a is None or isolated[key] <= 0:
            continue
        for other, pair in entries.items():
            if other == "null" or other not in isolated or isolated[other] <= 0:
                continue
            b = _job_key(other)
            if b is None or min(pair) <= 0:
                continue
            sa, sb = min(1.0, pair[0] / isolated[key]), min(1.0, pair[1] / isolated[other])
            speeds[(*a, *b)] = (sa, sb)
    return CoLocationTable(speeds, source=f"{path} [{gpu_type}]")


def _peer_folders() -> list[Path]:
    """Where the peers' data usually is: `$STRETTO_PEERS`, then `../shared/data/peers` (cwd, repository)."""
    folders = [Path(os.environ["STRETTO_PEERS"])] if os.environ.get("STRETTO_PEERS") else []
    folders.append(Path.cwd() / ".." / "shared" / "data" / "peers")
    folders.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "peers")
    return folders


@lru_cache(maxsize=8)
def find_colocation_table(path: str | None = None, gpu_type: str = DEFAULT_GPU_TYPE) -> CoLocationTable:
    """The table at `path`, or Shockwave's from the peers' folder; loaded once per (path, GPU type)."""
    if path is not None:
        return load_colocation_table(Path(path), gpu_type)
    for folder in _peer_folders():
        for candidate in (folder / "shockwave" / TABLE_FILE, folder / TABLE_FILE):
            if candidate.exists():
                return load_colocation_table(candidate, gpu_type)
    tried = ", ".join(str(f) for f in _peer_folders())
    raise ValueError(f"GPU sharing needs a co-location table: no shockwave/{TABLE_FILE} in {tried}")
