"""Desired-versus-observed planning and status derivation, on plain pod dicts."""

from __future__ import annotations

from typing import Any

import pytest

from stretto import contracts
from stretto.operator.job_status import Refusal, derive_status
from stretto.operator.reconcile import plan_workers, planned_nodes


def pod(index: int, *, phase: str = "Running", node: str | None = "n1", ready: bool = True,
        deleting: bool = False, unschedulable: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "True" if ready else "False"}]
    if unschedulable:
        conditions.append({"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                           "message": unschedulable})
    return {
        "metadata": {"name": f"j-worker-{index}", "labels": {contracts.LABEL_WORKER_INDEX: str(index)},
                     **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if deleting else {})},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase, "conditions": conditions},
    }


@pytest.mark.parametrize(("desired", "existing", "create", "delete"), [
    (3, [], (0, 1, 2), ()),
    (3, [0, 2], (1,), ()),
    (2, [0, 1, 2, 3], (), ("j-worker-3", "j-worker-2")),
    (2, [0, 1], (), ()),
    (0, [0], (), ("j-worker-0",)),
])
def test_plan_creates_missing_indices_and_removes_the_highest(desired, existing, create, delete):
    plan = plan_workers(desired, [pod(i) for i in existing])
    assert plan.create == create
    assert plan.delete == delete


def test_a_pod_being_deleted_counts_as_absent():
    plan = plan_workers(2, [pod(0), pod(1, deleting=True)])
    assert plan.create == (1,) and plan.delete == ()


def test_pods_without_an_index_label_are_ignored():
    stray = {"metadata": {"name": "other", "labels": {}}, "spec": {}, "status": {}}
    assert plan_workers(1, [stray]).create == (0,)


def test_status_running_when_all_desired_workers_are_ready():
    status = derive_status(2, [pod(0, node="a"), pod(1, node="b")], gpus_per_worker=4)
    assert status["phase"] == "Running"
    assert status["workers"] == 2 and status["readyWorkers"] == 2
    assert status["allocation"] == {"gpus": 8, "workers": 2, "nodes": ["a", "b"]}
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions == {"Scheduled": "True", "Running": "True", "Scaling": "False", "Suspended": "False",
                          "Succeeded": "False", "Failed": "False", "WorkersAccepted": "True"}


def test_status_pending_repeats_the_schedulers_reason():
    reason = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
    status = derive_status(1, [pod(0, phase="Pending", node=None, ready=False, unschedulable=reason)], 16)
    assert status["phase"] == "Pending"
    assert reason in status["message"]
    scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
    assert scheduled["status"] == "False" and scheduled["reason"] == "Unschedulable"
    assert reason in scheduled["message"]


def test_status_failed_names_the_failed_worker():
    status = derive_status(2, [pod(0), pod(1, phase="Failed", ready=False)], 1)
    assert status["phase"] == "Failed" and "j-worker-1" in status["message"]


def test_condition_transition_time_is_kept_while_the_status_holds():
    first = derive_status(1, [pod(0)], 1)
    previous = [dict(c, lastTransitionTime="2020-01-01T00:00:00Z") for c in first["conditions"]]
    again = derive_status(1, [pod(0)], 1, previous)
    assert all(c["lastTransitionTime"] == "2020-01-01T00:00:00Z" for c in again["conditions"])


@pytest.mark.parametrize(("desired", "existing", "plan_nodes", "expected"), [
    # nothing runs: the plan's nodes go to the indices in order
    (3, [], ["n1", "n1", "n2"], {0: "n1", 1: "n1", 2: "n2"}),
    # workers 0 and 1 run on n1 and n3; the plan keeps them and adds one on n2
    (3, [(0, "n1"), (1, "n3")], ["n1", "n3", "n2"], {2: "n2"}),
    # worker 1 is still pending: it follows the plan's spare node, not its old annotation
    (3, [(0, "n1"), (1, None), (2, "n2")], ["n1", "n2", "n4"], {1: "n4"}),
    # a shrink: only bound workers below the new count use up the plan's entries
    (1, [(0, "n1"), (1, "n2")], ["n1"], {}),
])
def test_planned_nodes_go_to_the_workers_without_a_node(desired, existing, plan_nodes, expected):
    pods = [pod(i, node=node, phase="Running" if node else "Pending") for i, node in existing]
    assert planned_nodes(desired, pods, plan_nodes) == expected


def test_a_deleting_pod_does_not_hold_its_planned_node():
    pods = [pod(0, node="n1"), pod(1, node="n2", deleting=True)]
    assert planned_nodes(2, pods, ["n1", "n3"]) == {1: "n3"}


def test_a_refused_plan_keeps_the_job_pending_with_the_apis_reason():
    refusal = Refusal("worker 0", "Forbidden", 'pods "j-worker-0" is forbidden: exceeded quota: q')
    status = derive_status(1, [], 1, None, refusal=refusal)
    assert status["phase"] == "Pending"
    assert status["message"] == 'the API server refused worker 0: pods "j-worker-0" is forbidden: exceeded quota: q'
    accepted = next(c for c in status["conditions"] if c["type"] == "WorkersAccepted")
    assert (accepted["status"], accepted["reason"], accepted["message"]) == ("False", "Forbidden", status["message"])


def test_a_refusal_while_running_keeps_the_phase_and_says_why_it_does_not_grow():
    refusal = Refusal("worker 1", "Forbidden", "exceeded quota")
    status = derive_status(2, [pod(0)], 1, None, refusal=refusal)
    assert status["phase"] == "Scaling"
    assert status["message"].endswith("the API server refused worker 1: exceeded quota")


def test_a_manifest_the_client_refuses_before_sending_is_the_jobs_refusal_too():
    from kubernetes import client

    from stretto.operator.plan_refusal import PlanRefused
    from stretto.operator.plan_refusal import refused_as as _refused_as

    with pytest.raises(PlanRefused) as refused, _refused_as("worker 0"):
        client.V1ResourceRequirements.model_validate({"limits": {"cpu": 64}})  # the Python client wants "64"
    refusal = refused.value.refusal
    assert refusal.reason == "ClientValidation" and refusal.what == "worker 0"
    assert refusal.summary.startswith("the operator's Kubernetes client refused worker 0: limits.cpu")
