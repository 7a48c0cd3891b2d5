"""Elastic TrainingJobs driven by the round, on the real local control plane (3 nodes × 8 GPUs).

The operator runs the `elastic` policy with 2-second rounds and a 3-second checkpoint notice
(tests/integration/harness.py): idle GPUs grow jobs to their maximum, a waiting job shrinks them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client, watch

from stretto import contracts
from tests.integration.harness import Harness, wait_for
from tests.integration.test_walking_skeleton import create_job, get_job, running_workers, training_job, worker_pods


class PodRecorder:
    """Records, per pod of one job, when the checkpoint request and the deletion were first seen."""

    def __init__(self, core: client.CoreV1Api, namespace: str, job: str) -> None:
        self.checkpoint_seen: dict[str, float] = {}
        self.deletion_seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(core, namespace, job), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str, job: str) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(core.list_namespaced_pod, namespace, timeout_seconds=5,
                                       label_selector=f"{contracts.LABEL_JOB}={job}"):
                pod, now = event["object"], time.monotonic()
                annotations = pod.metadata.annotations or {}
                if contracts.ANNOTATION_CHECKPOINT_REQUESTED in annotations:
                    self.checkpoint_seen.setdefault(pod.metadata.name, now)
                if pod.metadata.deletion_timestamp is not None or event["type"] == "DELETED":
                    self.deletion_seen.setdefault(pod.metadata.name, now)
                if self._stop.is_set():
                    stream.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def planned_workers(custom: client.CustomObjectsApi, namespace: str, name: str) -> int | None:
    status = get_job(custom, namespace, name).get("status") or {}
    return (status.get("allocation") or {}).get("plannedWorkers")


def indices(pods: list[client.V1Pod]) -> list[int]:
    return sorted(int(p.metadata.labels[contracts.LABEL_WORKER_INDEX]) for p in pods)


def assert_bound_where_planned(pods: list[client.V1Pod]) -> None:
    """Every worker carries the round's planned node, and the extender bound it there."""
    for pod in pods:
        planned = (pod.metadata.annotations or {}).get(contracts.ANNOTATION_PLANNED_NODE)
        assert planned == pod.spec.node_name, f"{pod.metadata.name}: planned {planned}, bound {pod.spec.node_name}"


def test_an_elastic_job_grows_when_gpus_are_idle_and_shrinks_with_a_checkpoint(core, custom, namespace):
    create_job(custom, namespace, training_job("grower", min_workers=1, max_workers=8, tenant="team-a"))
    grown = wait_for(lambda: running_workers(core, namespace, "grower", 8), 120, "the elastic job to grow to 8 workers")
    assert_bound_where_planned(grown)
    wait_for(lambda: planned_workers(custom, namespace, "grower") == 8, 30, "the status to show 8 planned workers")

    recorder = PodRecorder(core, namespace, "grower")
    try:
        create_job(custom, namespace, training_job("newcomer", min_workers=20, tenant="team-b"))
        newcomers = wait_for(lambda: running_workers(core, namespace, "newcomer", 20), 180, "the newcomer's 20 workers")
        assert_bound_where_planned(newcomers)
        pods = wait_for(lambda: running_workers(core, namespace, "grower", 4), 120, "the elastic job at 4 workers")
    finally:
        recorder.stop()

    assert indices(pods) == [0, 1, 2, 3]  # the highest indices went; worker 0 keeps the rendezvous
    removed = {contracts.worker_pod_name("grower", i) for i in range(4, 8)}
    assert removed <= set(recorder.deletion_seen), recorder.deletion_seen
    for name in removed:
        assert name in recorder.checkpoint_seen, f"{name} was deleted without a checkpoint request"
        assert recorder.checkpoint_seen[name] < recorder.deletion_seen[name]
    events = [e for e in core.list_namespaced_event(namespace).items
              if e.involved_object.name == "grower" and e.reason == "CheckpointRequested"]
    assert events and "checkpoint" in events[0].message


class RevisionLog:
    """Every version of one job's TrainingJob and worker pods, by etcd revision (one etcd: one order)."""

    def __init__(self, core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, job: str) -> None:
        self.planned: list[tuple[int, int | None]] = []  # (revision, status.allocation.plannedWorkers)
        self.created: dict[str, int] = {}                 # worker name -> revision of its creation
        self._stop = threading.Event()
        jobs = lambda **kw: custom.list_namespaced_custom_object(  # noqa: E731
            contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL,
            field_selector=f"metadata.name={job}", **kw)
        pods = lambda **kw: core.list_namespaced_pod(  # noqa: E731
            namespace, label_selector=f"{contracts.LABEL_JOB}={job}", **kw)
        self._threads = [threading.Thread(target=self._run, args=(jobs, self._job), daemon=True),
                         threading.Thread(target=self._run, args=(pods, self._pod), daemon=True)]
        for thread in self._threads:
            thread.start()

    def _run(self, list_call: Any, record: Any) -> None:
        version = ""
        while not self._stop.is_set():
            for event in watch.Watch().stream(list_call, timeout_seconds=2, resource_version=version):
                if event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                    record(event["raw_object"])
                    version = event["raw_object"]["metadata"]["resourceVersion"]

    def _job(self, body: dict[str, Any]) -> None:
        allocation = (body.get("status") or {}).get("allocation") or {}
        self.planned.append((int(body["metadata"]["resourceVersion"]), allocation.get("plannedWorkers")))

    def _pod(self, body: dict[str, Any]) -> None:
        self.created.setdefault(body["metadata"]["name"], int(body["metadata"]["resourceVersion"]))

    def planned_before(self, revision: int) -> int | None:
        return max(((r, p) for r, p in self.planned if r < revision), default=(0, None))[1]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)


def test_a_growing_job_stores_its_allocation_before_creating_workers(core, custom, namespace):
    """Growth is written as intent first: no worker exists, at any revision, beyond the job's stored
    allocation (a reader, or a leader taking over after a crash between the writes, never sees more)."""
    create_job(custom, namespace, training_job("holder", min_workers=20))
    wait_for(lambda: running_workers(core, namespace, "holder", 20), 180, "20 workers of the holder")
    log = RevisionLog(core, custom, namespace, "grower")
    try:
        create_job(custom, namespace, training_job("grower", min_workers=1, max_workers=8))
        wait_for(lambda: running_workers(core, namespace, "grower", 4), 120, "the elastic job on the 4 idle GPUs")
        custom.delete_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                               contracts.TRAININGJOB_PLURAL, "holder")
        wait_for(lambda: running_workers(core, namespace, "grower", 8), 120, "the elastic job grown to 8 workers")
        time.sleep(1)  # the watches catch up
    finally:
        log.stop()
    assert len(log.created) == 8, log.created
    grown = {name: revision for name, revision in log.created.items()
             if int(name.rsplit("-", 1)[1]) >= 4}
    assert len(grown) == 4, log.created
    for name, revision in grown.items():
        planned = log.planned_before(revision)
        assert planned is not None and planned > int(name.rsplit("-", 1)[1]), (
            f"{name} created at revision {revision} while the job's allocation said {planned}")


def test_a_rigid_job_is_never_started_partially(core, custom, namespace):
    create_job(custom, namespace, training_job("holder", min_workers=20))
    wait_for(lambda: running_workers(core, namespace, "holder", 20), 180, "20 workers of the holder")
    create_job(custom, namespace, training_job("rigid", min_workers=2, gpus=4))  # needs 8, 4 are free

    seen_plans: set[int | None] = set()
    deadline = time.monotonic() + 8  # four rounds
    while time.monotonic() < deadline:
        seen_plans.add(planned_workers(custom, namespace, "rigid"))
        assert not worker_pods(core, namespace, "rigid"), "a rigid job was started with too few GPUs"
        time.sleep(0.5)
    status = get_job(custom, namespace, "rigid")["status"]
    assert status["phase"] == "Pending" and "waiting for 8 GPUs" in status["message"]

    custom.delete_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                           contracts.TRAININGJOB_PLURAL, "holder")

    def both_running() -> list[client.V1Pod]:
        seen_plans.add(planned_workers(custom, namespace, "rigid"))
        return running_workers(core, namespace, "rigid", 2)

    wait_for(both_running, 120, "both workers of the rigid job")
    assert seen_plans <= {None, 0, 2}, seen_plans


def test_operator_killed_mid_scale_up_and_mid_scale_down_converges(harness: Harness, core, custom, namespace):
    create_job(custom, namespace, training_job("elastic", min_workers=1, max_workers=10))
    wait_for(lambda: worker_pods(core, namespace, "elastic"), 60, "the first workers")
    harness.kill("operator")  # mid scale-up
    harness.start_operator()
    pods = wait_for(lambda: running_workers(core, namespace, "elastic", 10), 120, "10 workers after the restart")
    assert indices(pods) == list(range(10))

    create_job(custom, namespace, training_job("arrival", min_workers=20))

    def checkpoint_requested() -> list[Any]:
        return [p for p in worker_pods(core, namespace, "elastic")
                if contracts.ANNOTATION_CHECKPOINT_REQUESTED in (p.metadata.annotations or {})]

    wait_for(checkpoint_requested, 60, "a checkpoint request on a shrinking worker")
    harness.kill("operator")  # mid scale-down
    harness.start_operator()

    pods = wait_for(lambda: running_workers(core, namespace, "elastic", 4), 120, "the elastic job at 4 workers")
    assert indices(pods) == [0, 1, 2, 3]
    wait_for(lambda: running_workers(core, namespace, "arrival", 20), 120, "the arrival's 20 workers")
    names = [p.metadata.name for p in worker_pods(core, namespace, "elastic")]
    assert len(names) == len(set(names)) == 4
    for job in ("elastic", "arrival"):
        wait_for(lambda j=job: (get_job(custom, namespace, j).get("status") or {}).get("phase") == "Running", 30,
                 f"{job} to report Running")
