"""TrainingJob → operator → kube-scheduler + Stretto extender → fake GPU nodes, on a real API server."""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from tests.integration.harness import Harness, wait_for

GROUP, VERSION, PLURAL = contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL


def training_job(name: str, *, min_workers: int = 1, max_workers: int | None = None,
                 gpus: int = 1, **spec_overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "workers": {"min": min_workers, "max": max_workers or min_workers},
        **({} if "gpuShare" in spec_overrides else {"gpusPerWorker": gpus}),  # the two exclude each other
        "work": {"epochs": 10, "samplesPerEpoch": 50000},
        "adaptation": {"mode": "none", "batchSizes": [128]},
        "template": {"spec": {"containers": [{"name": "trainer", "image": "example.com/trainer:1"}]}},
    }
    spec.update(spec_overrides)
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob", "metadata": {"name": name}, "spec": spec}


def create_job(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body))


def get_job(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def worker_pods(core: client.CoreV1Api, namespace: str, job: str) -> list[client.V1Pod]:
    selector = f"{contracts.LABEL_JOB}={job}"
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def running_workers(core: client.CoreV1Api, namespace: str, job: str, expected: int) -> list[client.V1Pod]:
    pods = worker_pods(core, namespace, job)
    running = [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
    return running if len(running) == expected and len(pods) == expected else []


def test_workers_are_bound_through_the_extender_onto_distinct_gpus(core, custom, namespace):
    jobs = {"wide": (2, 2), "narrow": (3, 1), "big": (1, 4), "half": (1, 8)}  # name: (workers, GPUs each)
    for name, (workers, gpus) in jobs.items():  # rigid, so each runs exactly its workers
        create_job(custom, namespace, training_job(name, min_workers=workers, gpus=gpus))

    pods: list[client.V1Pod] = []
    for name, (workers, _gpus) in jobs.items():
        pods += wait_for(lambda n=name, w=workers: running_workers(core, namespace, n, w), 120,
                         f"{workers} running workers of {name}")

    booked: dict[str, set[int]] = defaultdict(set)
    for pod in pods:
        requested = int(pod.spec.containers[0].resources.limits[contracts.GPU_RESOURCE])
        ids = contracts.parse_gpu_ids(pod.metadata.annotations.get(contracts.ANNOTATION_GPU_IDS))
        assert pod.spec.scheduler_name == contracts.SCHEDULER_NAME
        assert len(ids) == requested, f"{pod.metadata.name}: {ids} for {requested} GPUs"
        assert all(0 <= i < 8 for i in ids)
        clash = booked[pod.spec.node_name] & set(ids)
        assert not clash, f"GPUs {clash} on {pod.spec.node_name} booked twice ({pod.metadata.name})"
        booked[pod.spec.node_name] |= set(ids)

    for name, (workers, gpus) in jobs.items():
        status = wait_for(lambda n=name: (s := get_job(custom, namespace, n).get("status")) and
                          s.get("phase") == "Running" and s, 60, f"{name} to report Running")
        assert status["workers"] == workers
        assert status["allocation"]["gpus"] == workers * gpus
        scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
        assert scheduled["status"] == "True"


def test_a_job_that_cannot_fit_stays_pending_and_its_pods_say_why(core, custom, namespace):
    selector = {"nodeSelector": {"nvidia.com/gpu.product": "H100-that-is-not-here"}}
    body = training_job("nowhere")
    body["spec"]["template"]["spec"].update(selector)
    create_job(custom, namespace, body)

    def failed_scheduling_event() -> list[client.CoreV1Event]:
        events = core.list_namespaced_event(namespace).items
        return [e for e in events if e.reason == "FailedScheduling"
                and e.involved_object.name == contracts.worker_pod_name("nowhere", 0)]

    events = wait_for(failed_scheduling_event, 90, "a FailedScheduling event")
    assert "node(s) didn't match Pod's node affinity/selector" in events[0].message, events[0].message
    pod = worker_pods(core, namespace, "nowhere")[0]
    assert pod.status.phase == "Pending" and not pod.spec.node_name

    status = wait_for(lambda: (s := get_job(custom, namespace, "nowhere").get("status")) and
                      "affinity/selector" in (s.get("message") or "") and s, 60,
                      "the job's status to repeat the scheduler's reason")
    assert status["phase"] == "Pending"
    scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
    assert scheduled["status"] == "False" and "affinity/selector" in scheduled["message"]


def test_a_job_no_node_can_hold_waits_without_pods_and_says_why(core, custom, namespace):
    create_job(custom, namespace, training_job("too-wide", gpus=16))
    status = wait_for(lambda: (s := get_job(custom, namespace, "too-wide").get("status")) and
                      "no node has more than 8" in (s.get("message") or "") and s, 60,
                      "the round's reason in the job's status")
    assert status["phase"] == "Pending"
    scheduled = next(c for c in status["conditions"] if c["type"] == "Scheduled")
    assert scheduled["status"] == "False" and "needs 16 GPUs" in scheduled["message"]
    assert not worker_pods(core, namespace, "too-wide")  # nothing is started that cannot run


def _with(path: str, value: Any, **more: Any) -> dict[str, Any]:
    """A valid job with fields changed: dotted paths under spec (also as keywords); None deletes."""
    body = training_job("invalid")
    for dotted, new in {path: value, **more}.items():
        node = body["spec"]
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        if new is None:
            node.pop(leaf, None)
        else:
            node[leaf] = new
    return body


INVALID = {
    "min-greater-than-max": (_with("workers", {"min": 4, "max": 2}), "workers.min must not exceed workers.max"),
    "zero-workers": (_with("workers", {"min": 0, "max": 2}), "spec.workers.min"),
    "zero-gpus": (_with("gpusPerWorker", 0), "spec.gpusPerWorker"),
    "negative-gpus": (_with("gpusPerWorker", -2), "spec.gpusPerWorker"),
    "unknown-adaptation-mode": (_with("adaptation.mode", "turbo"), "spec.adaptation.mode"),
    "missing-template": (_with("template", None), "spec.template"),
    "template-without-containers": (_with("template", {"spec": {"containers": []}}),
                                    "spec.template.spec.containers"),
    "memory-cap-larger-than-any-gpu": (_with("gpuShare", {"memory": "512Gi", "minUtilization": 10}),
                                       "spec.gpuShare.memory"),
    "share-min-above-max": (_with("gpuShare", {"memory": "8Gi", "minUtilization": 80, "maxUtilization": 50}),
                            "minUtilization must not exceed"),
    "share-with-several-gpus": (_with("gpuShare", {"memory": "8Gi"}, gpusPerWorker=2), "spec.gpusPerWorker"),
    "initial-batch-not-listed": (_with("adaptation", {"mode": "gns", "batchSizes": [64, 128],
                                                      "initialBatchSize": 96}), "spec.adaptation.initialBatchSize"),
    "zero-epochs": (_with("work.epochs", 0), "spec.work.epochs"),
    "missing-work": (_with("work", None), "spec.work"),
    "bad-memory-quantity": (_with("gpuShare", {"memory": "lots"}), "spec.gpuShare.memory"),
    "negative-weight": (_with("weight", -1), "spec.weight"),
    "bad-tenant-name": (_with("tenant", "Team A!"), "spec.tenant"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_trainingjobs_are_refused_by_the_api_server(custom, namespace, case):
    body, expected = INVALID[case]
    with pytest.raises(ApiException) as refused:
        create_job(custom, namespace, copy.deepcopy(body))
    assert refused.value.status == 422, refused.value.body
    assert expected in refused.value.body, refused.value.body


def test_deleting_a_trainingjob_removes_its_pods_and_service(core, custom, namespace):
    create_job(custom, namespace, training_job("short-lived", min_workers=2))
    wait_for(lambda: running_workers(core, namespace, "short-lived", 2), 120, "2 running workers")
    service = core.read_namespaced_service(contracts.headless_service_name("short-lived"), namespace)
    assert service.spec.cluster_ip == "None"

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "short-lived")
    wait_for(lambda: not worker_pods(core, namespace, "short-lived"), 90, "garbage collection of the workers")
    wait_for(lambda: not [s for s in core.list_namespaced_service(namespace).items
                          if s.metadata.name == contracts.headless_service_name("short-lived")],
             60, "garbage collection of the service")


def test_operator_killed_while_reconciling_restarts_to_exactly_the_expected_pods(
        harness: Harness, core, custom, namespace):
    create_job(custom, namespace, training_job("survivor", min_workers=6))
    wait_for(lambda: worker_pods(core, namespace, "survivor"), 30, "the first worker pod")
    harness.kill("operator")  # SIGKILL, mid-reconcile: some workers may not exist yet
    harness.start_operator()

    pods = wait_for(lambda: running_workers(core, namespace, "survivor", 6), 120, "6 running workers")
    indices = sorted(int(p.metadata.labels[contracts.LABEL_WORKER_INDEX]) for p in pods)
    assert indices == [0, 1, 2, 3, 4, 5]
    names = {p.metadata.name for p in pods}
    assert names == {contracts.worker_pod_name("survivor", i) for i in range(6)}
    status = wait_for(lambda: (s := get_job(custom, namespace, "survivor").get("status")) and
                      s.get("phase") == "Running" and s, 60, "status Running after the restart")
    assert status["workers"] == 6
