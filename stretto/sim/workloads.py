"""Workloads: Stretto's neutral JSON-lines format, and reading any supported format by file name.

One job per line, a JSON object with these fields (unknown fields are an error):

    id            string, unique
    arrival_s     seconds from the start of the trace, ≥ 0
    model         profile name (see --profiles)
    batch_size    initial batch size
    epochs        epochs of training (may be fractional)
    samples_per_epoch   optional; default: the profile's dataset size
    workers       {"min": 1, "max": 1}: elastic range (min == max is rigid)
    gpus_per_worker     default 1
    tenant        default "" (the job is its own fairness principal)
    weight        default 1
    adaptation    {"mode": "none"|"gns"|"accordion", "schedule": [[first_epoch, batch], ...],
                   "batch_sizes": [...]}: an explicit schedule, or a generated GNS/Accordion
                   pattern up to the largest of batch_sizes; or {"mode": "goodput", "batch_range":
                   [min, max]}: each round the scheduler picks the batch in that range with the GPU
                   count, by goodput (the profile needs a goodput model); epochs × samples_per_epoch
                   are then samples at the initial batch size, each sample at batch b worth its
                   statistical efficiency (`stretto.core.goodput`)

Blank lines and lines starting with `#` are skipped. Errors name the file, the line and the field.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stretto.core.profiles import ProfileBook
from stretto.core.snapshots import AdaptationMode


class WorkloadError(ValueError):
    pass


class WorkersSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    min: int = Field(1, ge=1)
    max: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> WorkersSpec:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class AdaptationSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: AdaptationMode = AdaptationMode.NONE
    schedule: tuple[tuple[int, int], ...] = ()
    batch_sizes: tuple[int, ...] = ()
    batch_range: tuple[int, int] | None = None

    @model_validator(mode="after")
    def _sorted(self) -> AdaptationSpec:
        epochs = [e for e, _ in self.schedule]
        if epochs != sorted(epochs) or any(e < 0 for e in epochs) or any(b <= 0 for _, b in self.schedule):
            raise ValueError("schedule must be [first_epoch, batch_size] pairs, epochs increasing, batch > 0")
        goodput = self.mode is AdaptationMode.GOODPUT
        if goodput != (self.batch_range is not None):
            raise ValueError("batch_range is required with mode goodput, and only there")
        if self.batch_range is not None and not 0 < self.batch_range[0] <= self.batch_range[1]:
            raise ValueError(f"batch_range must be [min, max] with 0 < min <= max, got {list(self.batch_range)}")
        if goodput and self.schedule:
            raise ValueError("a goodput job has no schedule: the scheduler picks its batch")
        return self


class WorkloadJob(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str = Field(min_length=1)
    arrival_s: float = Field(ge=0)
    model: str = Field(min_length=1)
    batch_size: int = Field(gt=0)
    epochs: float = Field(gt=0)
    samples_per_epoch: int | None = Field(None, gt=0)
    workers: WorkersSpec = WorkersSpec()
    gpus_per_worker: int = Field(1, ge=1)
    tenant: str = ""
    weight: float = Field(1.0, gt=0)
    adaptation: AdaptationSpec = AdaptationSpec()

    @model_validator(mode="after")
    def _initial_in_range(self) -> WorkloadJob:
        r = self.adaptation.batch_range
        if r is not None and not r[0] <= self.batch_size <= r[1]:
            raise ValueError(f"batch_size {self.batch_size} outside adaptation.batch_range {list(r)}")
        return self

    @property
    def max_gpus(self) -> int:
        return self.workers.max * self.gpus_per_worker


def format_validation_error(err: ValidationError) -> str:
    return "; ".join(f"field '{'.'.join(str(p) for p in e['loc']) or '(line)'}': {e['msg']}" for e in err.errors())


def read_jsonl(path: Path) -> list[WorkloadJob]:
    jobs: list[WorkloadJob] = []
    seen: set[str] = set()
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as err:
            raise WorkloadError(f"{path}:{number}: not JSON ({err.msg})") from None
        try:
            job = WorkloadJob.model_validate(data)
        except ValidationError as err:
            raise WorkloadError(f"{path}:{number}: {format_validation_error(err)}") from None
        if job.id in seen:
            raise WorkloadError(f"{path}:{number}: field 'id': duplicate job id {job.id!r}")
        seen.add(job.id)
        jobs.append(job)
    if not jobs:
        raise WorkloadError(f"{path}: no jobs")
    return jobs


def write_jsonl(jobs: list[WorkloadJob], path: Path) -> None:
    Path(path).write_text("".join(json.dumps(j.model_dump(mode="json", exclude_defaults=True)) + "\n" for j in jobs))


def _refuse_unknown_header(path: Path, synergy_columns: list[str], pollux_header: str) -> None:
    """A CSV whose first line is a header (its arrival field is not a number) must be one of the two we read:
    a misspelt Pollux header would otherwise be read as Synergy rows, and its error would be about Synergy's."""
    with path.open(newline="") as f:
        first = next(csv.reader(f), [])
    if len(first) < 3 or first == synergy_columns:
        return
    for arrival in (first[2], first[1]):  # Synergy's arrival_s is the third field, Pollux's time the second
        try:
            float(arrival)
            return
        except ValueError:
            continue
    raise WorkloadError(f"{path}:1: a header that is neither Synergy's ({','.join(synergy_columns)}) nor "
                        f"Pollux's ({pollux_header}): {','.join(first)!r}")


def read_workload(path: Path, profiles: ProfileBook, *, pollux_jobs: str = "tuned") -> list[WorkloadJob]:
    """By name: `.csv` Pollux (by its header; `pollux_jobs` says how its jobs run) or Synergy, `.trace`
    Shockwave/Gavel, `.jobs.jsonl` Shockwave, other `.jsonl` ours."""
    from stretto.sim import peer_traces, pollux_traces

    path = Path(path)
    if not path.exists():
        raise WorkloadError(f"{path}: no such file")
    name = path.name
    if pollux_traces.is_pollux_workload(path):
        jobs = pollux_traces.read_pollux_csv(path, profiles, jobs=pollux_traces.pollux_jobs(pollux_jobs))
    elif name.endswith(".csv"):
        _refuse_unknown_header(path, peer_traces.SYNERGY_COLUMNS, pollux_traces.POLLUX_HEADER)
        jobs = peer_traces.read_synergy_csv(path, profiles)
    elif name.endswith(".trace"):
        jobs = peer_traces.read_shockwave_trace(path, profiles)
    elif name.endswith(".jobs.jsonl"):
        jobs = peer_traces.read_shockwave_jobs(path)
    else:
        jobs = read_jsonl(path)
    for number, job in enumerate(jobs, start=1):
        if job.model not in profiles:
            raise WorkloadError(
                f"{path}: job {number} ({job.id}): field 'model': no profile for {job.model!r} in {profiles.source}"
            )
    return jobs
