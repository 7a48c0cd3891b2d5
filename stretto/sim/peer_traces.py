"""Readers for the peers' trace formats (../shared/data/peers), producing Stretto workload jobs.

- Synergy CSV `job_id,model,arrival_s,iterations,gpus` (header optional): one epoch of
  iterations × the model's batch; rigid at `gpus` one-GPU workers.
- Shockwave `.jobs.jsonl`: epochs, samples per epoch and the run-length batch-size schedule
  Shockwave derives before simulating; used as is.
- Gavel/Shockwave `.trace` (12 tab-separated fields): epochs = ⌈steps / ⌈samples/batch⌉⌉ from
  the profile's dataset size; the batch-size schedule is Stretto's generated GNS/Accordion
  pattern (Shockwave's own hard-coded one is only in the `.jobs.jsonl`).
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

from pydantic import ValidationError

from stretto.core.profiles import ProfileBook
from stretto.sim.workloads import WorkloadError, WorkloadJob, format_validation_error

_JOB_TYPE = re.compile(r"^(?P<model>.+?) \(batch size (?P<batch>\d+)\)$")
SYNERGY_COLUMNS = ["job_id", "model", "arrival_s", "iterations", "gpus"]


def _build(path: Path, number: int, data: dict) -> WorkloadJob:
    try:
        return WorkloadJob.model_validate(data)
    except ValidationError as err:
        raise WorkloadError(f"{path}:{number}: {format_validation_error(err)}") from None


def read_synergy_csv(path: Path, profiles: ProfileBook) -> list[WorkloadJob]:
    jobs = []
    with Path(path).open(newline="") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if number == 1 and row == SYNERGY_COLUMNS:
                continue  # an optional header
            if not row:
                continue
            if len(row) != 5:
                raise WorkloadError(f"{path}:{number}: expected 5 fields, got {len(row)}")
            job_id, model, arrival, iterations, gpus = row
            if model not in profiles:
                raise WorkloadError(f"{path}:{number}: field 'model': no profile for {model!r} in {profiles.source}")
            batch = profiles.get(model).default_batch_size
            try:
                n_iter, n_gpus, arrival_s = int(iterations), int(gpus), float(arrival)
            except ValueError as err:
                raise WorkloadError(f"{path}:{number}: {err}") from None
            jobs.append(
                _build(
                    path,
                    number,
                    {
                        "id": job_id,
                        "arrival_s": arrival_s,
                        "model": model,
                        "batch_size": batch,
                        "epochs": 1,
                        "samples_per_epoch": n_iter * batch,
                        "workers": {"min": n_gpus, "max": n_gpus},
                    },
                )
            )
    return jobs


def read_shockwave_jobs(path: Path) -> list[WorkloadJob]:
    jobs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            data = {
                "id": d["job_id"],
                "arrival_s": d["arrival_s"],
                "model": d["model"],
                "batch_size": d["batch_size"],
                "epochs": d["epochs"],
                "samples_per_epoch": d["samples_per_epoch"],
                "workers": {"min": d["gpus"], "max": d["gpus"]},
                "weight": d.get("priority", 1.0),
                "adaptation": {
                    "mode": d.get("mode", "none").replace("static", "none"),
                    "schedule": d.get("bs_schedule", []),
                },
            }
        except (json.JSONDecodeError, KeyError) as err:
            raise WorkloadError(f"{path}:{number}: missing or unreadable field {err}") from None
        jobs.append(_build(path, number, data))
    return jobs


def read_shockwave_trace(path: Path, profiles: ProfileBook) -> list[WorkloadJob]:
    jobs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 12:
            raise WorkloadError(f"{path}:{number}: expected 12 tab-separated fields, got {len(fields)}")
        job_type, _cmd, _dir, _flag, _data, steps, scale, mode, weight, _slo, _duration, arrival = fields
        match = _JOB_TYPE.match(job_type)
        if not match:
            raise WorkloadError(f"{path}:{number}: field 'job_type': {job_type!r} has no batch size")
        model, batch = match.group("model"), int(match.group("batch"))
        if model not in profiles or profiles.get(model).samples_per_epoch is None:
            raise WorkloadError(f"{path}:{number}: field 'job_type': no profile with a dataset size for {model!r}")
        profile = profiles.get(model)
        samples = profile.samples_per_epoch or 1
        epochs = math.ceil(int(steps) / math.ceil(samples / batch))
        largest = max(bs for bs in profile.batch_sizes)
        data = {
            "id": f"j{number - 1:04d}",
            "arrival_s": float(arrival),
            "model": model,
            "batch_size": batch,
            "epochs": epochs,
            "samples_per_epoch": samples,
            "workers": {"min": int(scale), "max": int(scale)},
            "weight": float(weight),
            "adaptation": {"mode": mode.replace("static", "none"), "batch_sizes": [largest]},
        }
        jobs.append(_build(path, number, data))
    return jobs
