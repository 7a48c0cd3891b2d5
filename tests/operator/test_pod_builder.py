"""What the operator adds to a researcher's pod template."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stretto import contracts
from stretto.gpu_interceptor import control_file
from stretto.operator.pod_builder import headless_service, shared_gpu_additions, worker_pod


def job_body(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workers": {"min": 2, "max": 5}, **({} if "gpuShare" in spec else {"gpusPerWorker": 2}),
        "work": {"epochs": 1, "samplesPerEpoch": 10},
        "template": {
            "metadata": {"labels": {"team": "vision"}, "annotations": {"note": "x"}},
            "spec": {"containers": [
                {"name": "trainer", "image": "img", "env": [{"name": "LR", "value": "0.1"}]},
                {"name": "sidecar", "image": "side"},
            ]},
        },
    }
    base.update(spec)
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob",
            "metadata": {"name": "job", "namespace": "ns", "uid": "uid-1"}, "spec": base}


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def test_worker_pod_carries_the_contract():
    pod = worker_pod(job_body(), 3)
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "job-worker-3" and meta["namespace"] == "ns"
    assert meta["labels"][contracts.LABEL_JOB] == "job"
    assert meta["labels"][contracts.LABEL_WORKER_INDEX] == "3"
    assert meta["labels"]["team"] == "vision" and meta["annotations"]["note"] == "x"
    assert meta["ownerReferences"][0] | {} == {
        "apiVersion": "stretto.io/v1alpha1", "kind": "TrainingJob", "name": "job", "uid": "uid-1",
        "controller": True, "blockOwnerDeletion": True}
    assert spec["schedulerName"] == contracts.SCHEDULER_NAME
    assert spec["hostname"] == "job-worker-3" and spec["subdomain"] == "job-workers"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["containers"][0]["resources"]["limits"] == {contracts.GPU_RESOURCE: "2"}
    assert "resources" not in spec["containers"][1]
    assert contracts.ANNOTATION_PLANNED_NODE not in meta["annotations"]


def test_worker_pod_carries_the_rounds_planned_node():
    pod = worker_pod(job_body(), 0, planned_node="node-2")
    assert pod["metadata"]["annotations"][contracts.ANNOTATION_PLANNED_NODE] == "node-2"


def test_worker_gets_torchrun_elastic_rendezvous_settings():
    env = env_of(worker_pod(job_body(), 1))
    assert env["PET_NNODES"] == "2:5"
    assert env["PET_NPROC_PER_NODE"] == "2"
    assert env["PET_RDZV_BACKEND"] == "c10d"
    assert env["PET_RDZV_ENDPOINT"] == f"job-worker-0.job-workers:{contracts.WORKER_CONTAINER_PORT}"
    assert env["PET_RDZV_ID"] == "uid-1"
    assert env["STRETTO_WORKER_INDEX"] == "1"
    assert env["LR"] == "0.1"


def test_shared_gpu_worker_asks_for_a_share_and_carries_its_budget():
    pod = worker_pod(job_body(gpuShare={"memory": "10Gi", "minUtilization": 30,
                                                          "maxUtilization": 80}), 0)
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {contracts.GPU_SHARE_RESOURCE: "1"}
    annotations = pod["metadata"]["annotations"]
    assert annotations[contracts.ANNOTATION_GPU_MEMORY] == str(10 * 2**30)
    assert annotations[contracts.ANNOTATION_GPU_MIN_UTIL] == "30"
    assert annotations[contracts.ANNOTATION_GPU_MAX_UTIL] == "80"
    env = env_of_all(pod)
    assert env[contracts.ENV_LD_PRELOAD] == f"{contracts.CONTAINER_SHIM_DIR}/{contracts.SHIM_LIBRARY_NAME}"
    assert {v["name"] for v in pod["spec"]["volumes"]} == {
        contracts.VOLUME_CONFIG, contracts.VOLUME_STATE, contracts.VOLUME_SHIM}


def env_of_all(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_shared_gpu_additions_wire_the_shim_and_both_directories():
    add = shared_gpu_additions("worker")
    env = {e["name"]: e for e in add["env"]}
    assert env[contracts.ENV_CONTROL_FILE]["value"] == f"{contracts.CONTAINER_CONFIG_DIR}/control"
    assert env[contracts.ENV_LEDGER_FILE]["value"] == f"{contracts.CONTAINER_STATE_DIR}/ledger"
    assert env[contracts.ENV_POD_UID]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"
    mounts = {m["name"]: m for m in add["volumeMounts"]}
    assert mounts[contracts.VOLUME_CONFIG]["readOnly"] is True
    assert mounts[contracts.VOLUME_CONFIG]["subPathExpr"] == "$(STRETTO_POD_UID)/worker/config"
    assert mounts[contracts.VOLUME_STATE]["subPathExpr"] == "$(STRETTO_POD_UID)/worker/state"
    assert "readOnly" not in mounts[contracts.VOLUME_STATE]
    assert {v["name"] for v in add["volumes"]} == set(mounts)
    # The host layout the daemon writes is what the mounts select.
    root = Path(contracts.HOST_CONTROL_ROOT)
    assert control_file.control_path(root, "U", "worker") == root / "U" / "worker" / "config" / "control"
    assert control_file.ledger_path(root, "U", "worker") == root / "U" / "worker" / "state" / "ledger"


def test_explicit_requests_are_kept_equal_to_gpu_limits():
    body = job_body()
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"ephemeral-storage": "4Gi"}}
    resources = worker_pod(body, 0)["spec"]["containers"][0]["resources"]
    assert resources["requests"] == {"ephemeral-storage": "4Gi", contracts.GPU_RESOURCE: "2"}


def test_a_template_setting_what_stretto_sets_is_not_built_but_refused():
    body = job_body()
    body["spec"]["template"]["spec"]["nodeName"] = "stretto-gpu-0"
    with pytest.raises(ValidationError, match="Stretto sets nodeName"):
        worker_pod(body, 0)


def test_building_a_pod_does_not_change_the_job():
    body = job_body()
    before = repr(body)
    worker_pod(body, 0)
    assert repr(body) == before


def test_headless_service_selects_the_workers():
    service = headless_service(job_body())
    assert service["metadata"]["name"] == "job-workers"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {contracts.LABEL_JOB: "job", contracts.LABEL_ROLE: "worker"}
    assert service["spec"]["publishNotReadyAddresses"] is True


def test_integer_quantities_reach_the_pod_as_strings():
    body = job_body()
    containers = body["spec"]["template"]["spec"]["containers"]
    containers[0]["resources"] = {"limits": {"cpu": 64, "memory": "512Gi"}}
    containers[1]["resources"] = {"requests": {"cpu": 0.5}}
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "d", "emptyDir": {"sizeLimit": 10}}]
    spec = worker_pod(body, 0)["spec"]
    assert spec["containers"][0]["resources"]["limits"] == {"cpu": "64", "memory": "512Gi", contracts.GPU_RESOURCE: "2"}
    assert spec["containers"][1]["resources"]["requests"] == {"cpu": "0.5"}
    assert spec["volumes"][0]["emptyDir"]["sizeLimit"] == "10"
    assert spec["terminationGracePeriodSeconds"] == 30  # integers that are not quantities stay integers
