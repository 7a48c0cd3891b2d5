"""Pollux's workloads (petuum/adaptdl `osdi21-artifact`, simulator/workloads/*.csv) as Stretto jobs.

`name,time,application,num_replicas,batch_size`: a job's name, arrival in seconds, application
(a folder of Pollux's traces: the profile book must be loaded from that traces folder, which
holds the validation files the work comes from) and the TunedJobs GPU count and batch size that
Pollux's rigid baselines run. Each job becomes rigid at `num_replicas` one-GPU workers and
`batch_size`, with the samples that make it finish exactly when Pollux's simulator finishes it
at that size (`stretto.core.pollux_traces.PolluxApplication.rigid_work`). The epoch count is
Pollux's (its validation files' rows), each epoch an equal share of the samples: the real
epochs differ in length (statistical efficiency varies), which a rigid job never notices.

`jobs` says how the jobs run: `tuned` (the above), `elastic` (1 to batch / smallest local batch
workers at the TunedJobs batch, the work as rigid: Pollux's Optimus+Oracle), or `goodput` (as Pollux
runs its own jobs: 1 to max batch / smallest local batch workers, capped at the 64 GPUs the traces
cover, the batch chosen each round in [smallest, largest validated batch]; ncf pinned to one GPU at
32,768 as Pollux pins it). A goodput job's work is its application's whole progress (Pollux's steps
at the initial batch × that batch, `GoodputModel.total_progress`) in samples at the initial batch.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Literal

from stretto.core.pollux_traces import PolluxApplication, PolluxTraceError, is_traces_folder, read_applications
from stretto.core.profiles import ProfileBook
from stretto.sim.peer_traces import _build
from stretto.sim.workloads import WorkloadError, WorkloadJob

POLLUX_COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")
POLLUX_HEADER = ",".join(POLLUX_COLUMNS)
# Pollux's simulator pins ncf to one GPU for its elastic policies (Optimus, Pollux), and Pollux runs it at 32,768.
PINNED_TO_ONE_GPU = frozenset({"ncf"})
POLLUX_FIXED_BATCH: dict[str, int] = {"ncf": 32768}
PolluxJobs = Literal["tuned", "elastic", "goodput"]
POLLUX_JOB_KINDS: tuple[PolluxJobs, ...] = ("tuned", "elastic", "goodput")


def pollux_jobs(kind: str) -> PolluxJobs:
    if kind not in POLLUX_JOB_KINDS:
        raise WorkloadError(f"Pollux jobs must be one of {', '.join(POLLUX_JOB_KINDS)}, not {kind!r}")
    return kind  # type: ignore[return-value]


def is_pollux_workload(path: Path) -> bool:
    """A `.csv` whose first line is Pollux's header."""
    path = Path(path)
    if not path.name.endswith(".csv") or not path.is_file():
        return False
    with path.open(newline="") as f:
        return f.readline().strip() == POLLUX_HEADER


def default_traces(workload: Path) -> Path | None:
    """Pollux's layout: workloads/ beside traces/ (or traces/ beside the workload)."""
    for folder in (Path(workload).parent / "traces", Path(workload).parent.parent / "traces"):
        if is_traces_folder(folder):
            return folder
    return None


def _applications(path: Path, profiles: ProfileBook) -> dict[str, PolluxApplication]:
    source = Path(profiles.source)
    if not is_traces_folder(source):
        raise WorkloadError(f"{path}: a Pollux workload needs --profiles <Pollux traces folder>, not {profiles.source}")
    try:
        return read_applications(source)
    except PolluxTraceError as err:
        raise WorkloadError(str(err)) from None


def read_pollux_csv(path: Path, profiles: ProfileBook, *, jobs: PolluxJobs = "tuned") -> list[WorkloadJob]:
    """The workload's jobs, run as `jobs` says (module doc)."""
    path = Path(path)
    apps = _applications(path, profiles)
    out: list[WorkloadJob] = []
    with path.open(newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if number == 1:
                if tuple(c.strip() for c in row) != POLLUX_COLUMNS:
                    raise WorkloadError(f"{path}:1: header {','.join(row)!r}, expected {POLLUX_HEADER}")
                continue
            if not row:
                continue
            if len(row) != len(POLLUX_COLUMNS):
                raise WorkloadError(f"{path}:{number}: expected {len(POLLUX_COLUMNS)} fields, got {len(row)}")
            name, time, application, replicas, batch = (c.strip() for c in row)
            values: dict[str, float] = {}
            for field, text in (("time", time), ("num_replicas", replicas), ("batch_size", batch)):
                try:
                    values[field] = float(text) if field == "time" else int(text)
                except ValueError:
                    raise WorkloadError(f"{path}:{number}: field '{field}': {text!r} is not a number") from None
            if application not in apps:
                raise WorkloadError(
                    f"{path}:{number}: field 'application': no traces folder for {application!r} in {profiles.source}"
                )
            gpus, batch_size = int(values["num_replicas"]), int(values["batch_size"])
            if gpus < 1 or batch_size < 1:
                field = "num_replicas" if gpus < 1 else "batch_size"
                raise WorkloadError(f"{path}:{number}: field '{field}': must be ≥ 1")
            app = apps[application]
            if batch_size not in app.validation:
                raise WorkloadError(f"{path}:{number}: field 'batch_size': {batch_size} is not one of {application}'s "
                                    f"validated batch sizes {sorted(app.validation)}")
            if (batch_size, gpus) not in profiles.get(application).samples_per_second:
                raise WorkloadError(f"{path}:{number}: field 'num_replicas': the traces measure no placement of "
                                    f"{application} at batch {batch_size} on {gpus} GPUs")
            try:
                samples, _rate = app.rigid_work(batch_size, gpus)
            except ValueError as err:
                raise WorkloadError(f"{path}:{number}: field 'batch_size': {err}") from None
            fields: dict[str, object] = {"id": name, "arrival_s": values["time"], "model": application}
            if jobs == "goodput":
                fields.update(_goodput_fields(app, application, profiles))
            else:
                per_epoch = max(1, round(samples / app.epochs))
                max_workers = 1 if application in PINNED_TO_ONE_GPU else max(1, int(batch_size // app.min_local_bsz))
                fields.update({"batch_size": batch_size, "epochs": samples / per_epoch, "samples_per_epoch": per_epoch,
                               "workers": {"min": 1, "max": max_workers} if jobs == "elastic"
                               else {"min": gpus, "max": gpus}})
            out.append(_build(path, number, fields))
    if not out:
        raise WorkloadError(f"{path}: no jobs")
    if len({j.id for j in out}) != len(out):
        raise WorkloadError(f"{path}: field 'name': duplicate job names")
    if any(not math.isfinite(j.arrival_s) for j in out):
        raise WorkloadError(f"{path}: field 'time': not finite")
    return out


def _goodput_fields(app: PolluxApplication, application: str, profiles: ProfileBook) -> dict[str, object]:
    """A goodput job as Pollux runs its own: the batch range Pollux allows, workers as far as the range lets
    every worker hold the smallest local batch (and the traces measure), the whole run's progress as work."""
    model = profiles.get(application).goodput
    if model is None:
        raise WorkloadError(f"{application}: its profile has no goodput model (load Pollux's traces folder)")
    fixed = POLLUX_FIXED_BATCH.get(application)
    low, high = (fixed, fixed) if fixed else (app.init_batch_size, app.max_batch_size)
    workers = 1 if application in PINNED_TO_ONE_GPU else min(max(model.gpu_counts), int(high // app.min_local_bsz))
    per_epoch = max(1, round(model.total_progress / app.epochs))
    return {"batch_size": low, "epochs": model.total_progress / per_epoch, "samples_per_epoch": per_epoch,
            "workers": {"min": 1, "max": max(1, workers)},
            "adaptation": {"mode": "goodput", "batch_range": [low, high]}}
