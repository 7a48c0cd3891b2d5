"""`status.prediction`: when the round expects a job to finish, and its ρ (finish-time fairness).

The finish time moves a little every round as wall time passes, so a prediction is rewritten only
when it has moved materially (`settled`): a steady round writes no status.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from stretto.operator.snapshot_builder import JobPlan

MIN_FINISH_SHIFT_S = 60.0     # a finish time that moves less than this (wall seconds) ...
RELATIVE_FINISH_SHIFT = 0.02  # ... and less than this share of the time left, is the same prediction


def _parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def prediction(job_plan: JobPlan, job_body: dict[str, Any], now: dt.datetime, time_scale: float) -> dict[str, Any]:
    """The prediction of a job planned `job_plan` at `now`; times in `job_plan` are training seconds."""
    if job_plan.remaining_seconds is None:
        return {}
    finish = now + dt.timedelta(seconds=job_plan.remaining_seconds / time_scale)
    result: dict[str, Any] = {
        "finishTime": finish.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "remainingSeconds": round(job_plan.remaining_seconds, 1),
        "regimes": [{"batchSize": size, "remainingEpochs": round(epochs, 3)} for size, epochs in job_plan.regimes],
    }
    created = job_body["metadata"].get("creationTimestamp")
    if created and job_plan.isolated_seconds:
        elapsed = (finish - _parse(created)).total_seconds() * time_scale
        result["rho"] = round(elapsed / job_plan.isolated_seconds, 3)
    return result


def settled(stored: dict[str, Any] | None, new: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """`stored` when `new` says the same (same regimes, finish time within the tolerance), else `new`."""
    if not stored or not new or "finishTime" not in stored or stored.get("regimes") != new.get("regimes"):
        return new
    old_finish, new_finish = _parse(stored["finishTime"]), _parse(new["finishTime"])
    left = max(0.0, (new_finish - now).total_seconds())
    tolerance = max(MIN_FINISH_SHIFT_S, RELATIVE_FINISH_SHIFT * left)
    return stored if abs((new_finish - old_finish).total_seconds()) < tolerance else new
