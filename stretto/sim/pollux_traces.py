"""Pollux's workloads (petuum/adaptdl `osdi21-artifact`, simulator/workloads/*.csv) as Stretto jobs.

`name,time,application,num_replicas,batch_size`: a job's name, arrival in seconds, application
(a folder of Pollux's traces: the profile book must be loaded from that traces folder, which
holds the validation files the work comes from) and the TunedJobs GPU count and batch size that
Pollux's rigid baselines run. Each job becomes rigid at `num_replicas` one-GPU workers and
`batch_size`, with the samples that make it finish exactly when Pollux's simulator finishes it
at that size (`stretto.core.pollux_traces.PolluxApplication.rigid_work`). The epoch count is
Pollux's (its validation files' rows), each epoch an equal share of the samples: the real
epochs differ in length (statistical efficiency varies), which a rigid job never notices.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from stretto.core.pollux_traces import PolluxApplication, PolluxTraceError, is_traces_folder, read_applications
from stretto.core.profiles import ProfileBook
from stretto.sim.peer_traces import _build
from stretto.sim.workloads import WorkloadError, WorkloadJob

POLLUX_COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")
POLLUX_HEADER = ",".join(POLLUX_COLUMNS)
# Pollux's simulator pins ncf to one GPU for its elastic policies (Optimus, Pollux).
PINNED_TO_ONE_GPU = frozenset({"ncf"})


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


def read_pollux_csv(path: Path, profiles: ProfileBook, *, elastic: bool = False) -> list[WorkloadJob]:
    """Rigid TunedJobs; `elastic`: 1 to batch / smallest local batch workers, as Pollux runs Optimus (work as rigid)."""
    path = Path(path)
    apps = _applications(path, profiles)
    jobs: list[WorkloadJob] = []
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
            per_epoch = max(1, round(samples / app.epochs))
            max_workers = 1 if application in PINNED_TO_ONE_GPU else max(1, int(batch_size // app.min_local_bsz))
            jobs.append(
                _build(path, number, {
                    "id": name,
                    "arrival_s": values["time"],
                    "model": application,
                    "batch_size": batch_size,
                    "epochs": samples / per_epoch,
                    "samples_per_epoch": per_epoch,
                    "workers": {"min": 1, "max": max_workers} if elastic else {"min": gpus, "max": gpus},
                })
            )
    if not jobs:
        raise WorkloadError(f"{path}: no jobs")
    if len({j.id for j in jobs}) != len(jobs):
        raise WorkloadError(f"{path}: field 'name': duplicate job names")
    if any(not math.isfinite(j.arrival_s) for j in jobs):
        raise WorkloadError(f"{path}: field 'time': not finite")
    return jobs
