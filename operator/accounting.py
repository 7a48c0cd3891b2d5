"""The service each job has received, advanced once per round: what LAS, Themis and ρ are based on."""

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
    against jobs, and the round loop advances every job every round).
    """
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
