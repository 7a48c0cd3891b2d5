"""The operator's configuration: compressed time (`timeScale`), and what a live cluster cannot run."""

from __future__ import annotations

import datetime as dt

import pytest

from stretto.operator import job_prediction
from stretto.operator.config import ConfigSource, OperatorConfig
from stretto.operator.snapshot_builder import JobPlan, build_snapshot
from tests.operator.test_snapshot_builder import BOOK, job, ready_node


def test_the_time_scale_is_validated_and_can_come_from_the_environment(monkeypatch):
    assert OperatorConfig().time_scale == 1.0
    assert OperatorConfig.model_validate({"timeScale": 30}).time_scale == 30.0
    with pytest.raises(ValueError, match="timeScale"):
        OperatorConfig.model_validate({"timeScale": 0})
    monkeypatch.setenv("STRETTO_TIME_SCALE", "20")
    monkeypatch.setenv("STRETTO_ROUND_SECONDS", "3")
    current = ConfigSource().current
    assert (current.time_scale, current.round_seconds) == (20.0, 3.0)


def test_the_snapshot_is_in_training_seconds():
    created = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    status = {"phase": "Running", "accounting": {"attainedGpuSeconds": 10, "runSeconds": 5,
                                                 "firstStart": "2026-01-01T00:00:02Z"}}
    body = job("a", created=created.strftime("%Y-%m-%dT%H:%M:%SZ"), status=status)
    now = created.timestamp() + 100
    plain = build_snapshot(now_s=now, round_index=0, round_seconds=3, jobs=[body], nodes=[ready_node("n1")],
                           pods=[], book=BOOK)
    fast = build_snapshot(now_s=now, round_index=0, round_seconds=3, jobs=[body], nodes=[ready_node("n1")],
                          pods=[], book=BOOK, time_scale=30)
    assert fast.round_seconds == 90
    assert fast.now_s - fast.jobs[0].arrival_s == pytest.approx(30 * (plain.now_s - plain.jobs[0].arrival_s))
    assert fast.now_s - fast.jobs[0].first_start_s == pytest.approx(30 * 98)
    assert (fast.jobs[0].attained_gpu_seconds, fast.jobs[0].run_seconds) == (300, 150)


def test_finish_time_and_rho_convert_training_seconds_to_wall_time():
    now = dt.datetime(2026, 1, 1, 0, 1, 40, tzinfo=dt.UTC)  # 100 wall seconds after creation
    plan = JobPlan(workers=1, gpus=1, remaining_seconds=3000.0, isolated_seconds=4000.0)
    prediction = job_prediction.prediction(plan, job("a"), now, time_scale=30.0)
    assert prediction["finishTime"] == "2026-01-01T00:03:20Z"  # 3000 training s = 100 wall s from now
    assert prediction["rho"] == pytest.approx(200 * 30 / 4000)  # 200 wall s since creation = 6000 training s


def test_a_shared_gpu_plan_is_refused_on_a_live_cluster():
    with pytest.raises(ValueError, match="share_gpus is for `stretto simulate` only"):
        OperatorConfig.model_validate({"scheduler": {"packer": {"name": "proportional", "args": {"share_gpus": True}}}})


def test_tenant_weights_scale_the_jobs_own_weight():
    config = OperatorConfig.model_validate({"tenantWeights": {"t": 3}})
    with pytest.raises(ValueError, match="tenantWeights"):
        OperatorConfig.model_validate({"tenantWeights": {"t": 0}})
    snapshot = build_snapshot(now_s=0, round_index=0, round_seconds=60, jobs=[job("a")], nodes=[ready_node("n1")],
                              pods=[], book=BOOK, tenant_weights=config.tenant_weights)
    assert snapshot.jobs[0].tenant == "t" and snapshot.jobs[0].weight == 3.0
