"""The chaos run's parts that need no cluster: the fault schedule, the invariants, the fuzz requests."""

from __future__ import annotations

import json

from stretto import contracts
from stretto.devcluster import chaos, extender_fuzz


def job(name: str, uid: str, *, workers: int | None = None, samples: float = 0.0) -> dict:
    status: dict = {"progress": {"samplesDone": samples}}
    if workers is not None:
        status["allocation"] = {"plannedWorkers": workers}
    return {"metadata": {"name": name, "uid": uid}, "status": status}


def worker(job_name: str, uid: str, index: int, *, node: str | None = None, gpus: str | None = None,
           deleting: bool = False, phase: str = "Running", owner_kind: str = contracts.TRAININGJOB_KIND,
           leaving: bool = False) -> dict:
    annotations = {contracts.ANNOTATION_GPU_IDS: gpus} if gpus else {}
    if leaving:
        annotations[contracts.ANNOTATION_CHECKPOINT_REQUESTED] = "2026-12-03T00:00:00Z"
    meta: dict = {"name": f"{job_name}-worker-{index}", "namespace": "ns",
                  "labels": {contracts.LABEL_JOB: job_name, contracts.LABEL_WORKER_INDEX: str(index)},
                  "ownerReferences": [{"kind": owner_kind, "uid": uid}], "annotations": annotations}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-03T00:00:00Z"
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}


def kinds(violations: list[chaos.Violation]) -> list[str]:
    return sorted(v.kind for v in violations)


def test_a_healthy_listing_has_no_violation():
    checker = chaos.InvariantChecker()
    jobs = [job("a", "u1", workers=2, samples=10), job("b", "u2", workers=1)]
    pods = [worker("a", "u1", 0, node="n1", gpus="0"), worker("a", "u1", 1, node="n1", gpus="1"),
            worker("b", "u2", 0, node="n1", gpus="2"),
            worker("a", "u1", 1, node="n2", gpus="1", deleting=True),         # being replaced: not live
            worker("b", "u2", 1, node="n1", gpus="0", phase="Succeeded")]     # finished: holds nothing
    assert checker.check(jobs, pods) == [] and checker.check(jobs, pods) == []


def test_each_invariant_is_caught():
    checker = chaos.InvariantChecker()
    jobs = [job("a", "u1", workers=1, samples=100)]
    pods = [worker("a", "u1", 0, node="n1", gpus="0,1"), worker("a", "u1", 0, node="n1", gpus="1"),
            worker("gone", "u9", 0)]
    first = checker.check(jobs, pods)
    assert kinds(first) == ["double-booked GPU", "duplicate", "orphan"]   # over-allocation needs a second look
    second = checker.check([job("a", "u1", workers=1, samples=40)], pods)
    assert kinds(second) == ["double-booked GPU", "duplicate", "orphan", "over-allocation", "progress regression"]
    assert "100 -> 40 samples" in next(v.detail for v in second if v.kind == "progress regression")


def test_a_transient_over_allocation_is_not_a_violation():
    checker = chaos.InvariantChecker()
    pods = [worker("a", "u1", 0), worker("a", "u1", 1)]
    assert checker.check([job("a", "u1", workers=1)], pods) == []      # pods created, status not yet written
    assert checker.check([job("a", "u1", workers=2)], pods) == []
    shrinking = [worker("a", "u1", 0), worker("a", "u1", 1, leaving=True)]
    assert checker.check([job("a", "u1", workers=1)], shrinking) == []  # asked to checkpoint: on its way out
    assert checker.check([job("a", "u1", workers=1)], shrinking) == []


def test_the_schedule_is_seeded_and_spread_after_the_settling_time():
    plan = chaos.FaultPlan(operator_kills=30, extender_kills=5, apiserver_restarts=1, etcd_restarts=1)
    one, again = chaos.fault_schedule(plan, 200, seed=3), chaos.fault_schedule(plan, 200, seed=3)
    assert one == again and one != chaos.fault_schedule(plan, 200, seed=4)
    assert len(one) == plan.total == 37
    assert all(5 <= f.at_s < 200 for f in one) and [f.at_s for f in one] == sorted(f.at_s for f in one)
    assert sum(f.target == chaos.OPERATOR for f in one) == 30


def test_chaos_fires_what_is_due_and_kills_the_leader():
    now = [0.0]
    restarted: list[str] = []
    faults = chaos.Chaos([chaos.Fault(1, chaos.OPERATOR), chaos.Fault(2, chaos.ETCD), chaos.Fault(9, chaos.EXTENDER)],
                         restart=restarted.append, leader=lambda: "operator-1", clock=lambda: now[0])
    assert faults.tick() == []
    now[0] = 2.5
    assert faults.tick() == ["operator-1", "etcd"] and not faults.done
    now[0] = 10
    assert faults.tick() == ["extender"] and faults.done
    assert faults.fired == {chaos.OPERATOR: 1, chaos.ETCD: 1, chaos.EXTENDER: 1}


def test_the_leader_is_found_by_the_pid_in_the_lease():
    replicas = {"operator-0": 101, "operator-1": 202}
    assert chaos.leader_from_lease("my-host-name-202-ab12cd", replicas) == "operator-1"
    assert chaos.leader_from_lease("host-999-ab12cd", replicas) is None
    assert chaos.leader_from_lease(None, replicas) is None


def test_fuzz_requests_are_seeded_and_cover_every_kind():
    pending = [{"metadata": {"name": "w", "namespace": "ns", "uid": "u"},
                "spec": {"containers": [{"name": "c", "resources": {"limits": {contracts.GPU_RESOURCE: "1"}}}]}}]
    batch = extender_fuzz.requests(400, 7, nodes=["n1", "n2"], pending=pending)
    assert batch == extender_fuzz.requests(400, 7, nodes=["n1", "n2"], pending=pending)
    assert len(batch) == 400
    assert {r.kind for r in batch} == {"garbage", "wrong-types", "oversized", "bad-quantity", "unknown-bind",
                                       "forged-filter", "forged-bind"}
    forged = next(r for r in batch if r.kind == "forged-filter")
    assert json.loads(forged.body)["Pod"]["spec"]["containers"][0]["resources"] == {}   # the GPU limit stripped
    assert all(r.binds is not None for r in batch if r.kind == "forged-bind")


def test_an_accepted_bind_off_the_plan_is_disallowed():
    report = extender_fuzz.FuzzReport(accepted_binds=[("ns", "w0", "n1"), ("ns", "w1", "n2"), ("ns", "w2", "n1")])
    pods = {"w0": {"metadata": {"annotations": {contracts.ANNOTATION_PLANNED_NODE: "n1"}}},
            "w1": {"metadata": {"annotations": {contracts.ANNOTATION_PLANNED_NODE: "n1"}}},
            "w2": {"metadata": {}}}
    assert extender_fuzz.disallowed_binds(report, lambda ns, name: pods[name]) == [
        "ns/w1 bound to n2, planned for n1"]
