"""Attained service, advanced once per round."""

from __future__ import annotations

import datetime as dt

from stretto.operator.accounting import advance

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_a_job_that_starts_records_its_first_start_and_charges_nothing_yet():
    first = advance(None, running_gpus=4, now=T0)
    assert first == {"attainedGpuSeconds": 0.0, "runSeconds": 0.0, "firstStart": "2026-01-01T00:00:00Z",
                     "runningGpus": 4, "updatedAt": "2026-01-01T00:00:00Z"}


def test_running_gpus_are_charged_for_the_time_since_the_last_update():
    first = advance(None, running_gpus=4, now=T0)
    later = advance(first, running_gpus=2, now=T0 + dt.timedelta(seconds=60))
    assert later["attainedGpuSeconds"] == 240.0 and later["runSeconds"] == 60.0
    assert later["firstStart"] == "2026-01-01T00:00:00Z"


def test_stopping_records_the_end_and_a_waiting_job_accrues_nothing():
    running = advance(None, running_gpus=1, now=T0)
    stopped = advance(running, running_gpus=0, now=T0 + dt.timedelta(seconds=30))
    assert stopped["lastRunEnd"] == "2026-01-01T00:00:30Z" and stopped["attainedGpuSeconds"] == 30.0
    idle = advance(stopped, running_gpus=0, now=T0 + dt.timedelta(seconds=90))
    assert idle["attainedGpuSeconds"] == 30.0 and idle["runSeconds"] == 30.0
    never = advance(None, running_gpus=0, now=T0)
    assert "firstStart" not in never
