"""What decides whether the reconciler writes a status: merge patches, finished jobs, settled predictions."""

from __future__ import annotations

import datetime as dt

from stretto.operator.accounting import advance, attained_at
from stretto.operator.job_prediction import settled
from stretto.operator.job_status import derive_status, finished_status
from stretto.operator.merge_patch import changes, merged

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_a_merge_patch_merges_objects_replaces_the_rest_and_none_removes():
    target = {"allocation": {"gpus": 2, "plannedWorkers": 2}, "phase": "Running", "conditions": [{"type": "A"}]}
    patch = {"allocation": {"gpus": 0, "plannedWorkers": None}, "conditions": [], "prediction": None}
    assert merged(target, patch) == {"allocation": {"gpus": 0}, "phase": "Running", "conditions": []}
    assert changes(target, patch)
    assert not changes(target, {"phase": "Running", "allocation": {"gpus": 2}, "prediction": None})


def test_a_finished_job_holds_and_plans_nothing_and_each_condition_keeps_its_own_time():
    running = derive_status(2, [], 1, None)["conditions"]
    for condition in running:
        condition["lastTransitionTime"] = "2026-01-01T00:00:00Z"
    running = [c | {"status": "True"} if c["type"] == "Suspended" else c for c in running]
    status = finished_status("Succeeded", "finished 10 epochs", running)
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Succeeded"]["lastTransitionTime"] > "2026-01-01T00:00:00Z"  # it changed now
    assert by_type["Suspended"]["status"] == "False" and by_type["Suspended"]["lastTransitionTime"] > "2026-01-01"
    assert by_type["Failed"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"  # False before and after
    after = merged({"allocation": {"gpus": 2, "plannedWorkers": 2, "plannedGpus": 2, "cpuPerWorker": "12"},
                    "prediction": {"finishTime": "x"}}, status)
    assert after["allocation"] == {"gpus": 0, "workers": 0, "nodes": []} and "prediction" not in after


def test_accounting_changes_only_when_the_running_gpus_do_and_extrapolates_in_between():
    first = advance(None, running_gpus=4, now=T0)
    same = advance(first, running_gpus=4, now=T0 + dt.timedelta(seconds=60))
    assert same is first  # a steady round: nothing to write
    assert attained_at(first, T0 + dt.timedelta(seconds=60)) == (240.0, 60.0)
    assert attained_at(first, None) == (0.0, 0.0)


def test_a_prediction_that_moved_less_than_the_tolerance_is_the_stored_one():
    stored = {"finishTime": "2026-01-01T02:00:00Z", "remainingSeconds": 7200.0, "regimes": []}
    nudged = {"finishTime": "2026-01-01T02:00:30Z", "remainingSeconds": 7170.0, "regimes": []}
    moved = {"finishTime": "2026-01-01T02:10:00Z", "remainingSeconds": 7800.0, "regimes": []}
    assert settled(stored, nudged, T0) is stored
    assert settled(stored, moved, T0) is moved
    assert settled(None, nudged, T0) is nudged
    assert settled(stored, {**nudged, "regimes": [{"batchSize": 64, "remainingEpochs": 1.0}]}, T0)["regimes"]
