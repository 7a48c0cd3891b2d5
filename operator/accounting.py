"""The service each job has received: what LAS, Themis and ρ are based on.

Stored as of the last change of the job's running GPUs (`updatedAt`), with the GPUs it has held
since: a round that changes nothing about a job changes nothing in its status (and writes
nothing), and `attained_at` extrapolates to any moment.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def _format(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def advance(previous: dict[str, Any] | None, running_gpus: int, now: dt.datetime) -> dict[str, Any]:
    """`status.accounting` after the time since its last update, during which the job held `running_gpus`.

    The GPUs running now are charged for the whole interval since the last update (rounds are short
    against jobs). Unchanged running GPUs: `previous` itself, as stored.
    """
    if previous and previous.get("updatedAt") and previous.get("runningGpus", 0) == running_gpus:
        return previous
    previous = previous or {}
    last = _parse(previous.get("updatedAt"))
    elapsed = max(0.0, (now - last).total_seconds()) if last else 0.0
    was_running = bool(previous.get("runningGpus"))
    accounting = {
        "attainedGpuSeconds": round(float(previous.get("attainedGpuSeconds") or 0.0)
                                    + (elapsed * previous.get("runningGpus", 0) if was_running else 0.0), 3),
        "runSeconds": round(float(previous.get("runSeconds") or 0.0) + (elapsed if was_running else 0.0), 3),
        "firstStart": previous.get("firstStart") or (_format(now) if running_gpus else None),
        "lastRunEnd": _format(now) if was_running and not running_gpus else previous.get("lastRunEnd"),
        "runningGpus": running_gpus,
        "updatedAt": _format(now),
    }
    return {key: value for key, value in accounting.items() if value is not None}


def attained_at(accounting: dict[str, Any], now: dt.datetime | None) -> tuple[float, float]:
    """(attained GPU-seconds, run seconds) at `now`: the stored figures plus what the held GPUs have accrued
    since (None: as stored)."""
    attained = float(accounting.get("attainedGpuSeconds") or 0.0)
    run = float(accounting.get("runSeconds") or 0.0)
    last, gpus = _parse(accounting.get("updatedAt")), int(accounting.get("runningGpus") or 0)
    if now is None or last is None or gpus <= 0:
        return attained, run
    elapsed = max(0.0, (now - last).total_seconds())
    return attained + gpus * elapsed, run + elapsed
