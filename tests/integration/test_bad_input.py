"""What cannot run is refused at `kubectl apply`, and one bad job never breaks anyone else's.

On the real local control plane: the corpus in bad_trainingjobs.yaml (plausible mistakes) is refused by
the API server, each with a message naming the field; valid edge cases are accepted and their workers
run; a job whose workers the API server refuses (a ResourceQuota the CRD cannot know about) beside five
healthy jobs: the five succeed, the poison job says why it waits, and no round fails.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.api import pod_template_schema
from stretto.api.models import JOB_NAME_MAX_LENGTH
from stretto.devcluster.binaries import cached_binaries
from tests.integration.harness import TEST_OPERATOR_CONFIG, Harness, _http_ok, wait_for

GROUP, VERSION, PLURAL = contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL
CORPUS = yaml.safe_load(Path(__file__).with_name("bad_trainingjobs.yaml").read_text())
TIME_SCALE = 20.0


def merged(base: Any, patch: Any) -> Any:
    """`patch` over `base`: mappings merge, lists and scalars replace, None deletes."""
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value) if key in out else copy.deepcopy(value)
    return out


def create(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create as `kubectl create/apply` does: strict server-side field validation."""
    return dict(custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body,
                                                       field_validation="Strict"))


def get_job(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))


def running_pods(core: client.CoreV1Api, namespace: str, job: str, expected: int) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{contracts.LABEL_JOB}={job}").items
    running = [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]
    return running if len(running) == expected == len(pods) else []


@pytest.fixture(scope="module")
def corpus_namespace(core: client.CoreV1Api) -> Iterator[str]:
    """One namespace for the whole corpus: nothing in it is ever accepted."""
    name = f"bad-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_the_corpus_is_a_corpus():
    assert len(CORPUS["cases"]) >= 30
    name_case = CORPUS["cases"]["name-63-characters"]["patch"]["metadata"]["name"]
    assert len(name_case) == 63


@pytest.mark.parametrize("case", sorted(CORPUS["cases"]))
def test_an_invalid_trainingjob_is_refused_with_a_message_naming_the_field(custom, corpus_namespace, case):
    entry = CORPUS["cases"][case]
    body = merged(CORPUS["base"], entry["patch"])
    with pytest.raises(ApiException) as refused:
        create(custom, corpus_namespace, body)
    status = json.loads(refused.value.body)
    # 422 Invalid; 400 BadRequest when strict decoding meets an unknown field (before any validation)
    assert refused.value.status in (400, 422), status
    assert entry["field"] in status["message"], f"{entry['mistake']}: {status['message']}"
    if entry.get("says"):
        assert entry["says"] in status["message"], status["message"]


EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_example_manifests_are_accepted(custom, corpus_namespace, path: Path):
    for document in yaml.safe_load_all(path.read_text()):
        accepted = custom.create_namespaced_custom_object(GROUP, VERSION, corpus_namespace, PLURAL, document,
                                                          field_validation="Strict", dry_run="All")
        assert accepted["spec"]["template"] == document["spec"]["template"]


def test_kubectl_refuses_a_container_typo_with_its_path(harness: Harness, corpus_namespace):
    kubectl = _kubectl()
    body = merged(CORPUS["base"], CORPUS["cases"]["container-field-typo"]["patch"])
    result = subprocess.run([str(kubectl), f"--kubeconfig={harness.kubeconfig}", "-n", corpus_namespace,
                             "apply", "-f", "-"], input=json.dumps(body), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result.stdout
    assert 'unknown field "spec.template.spec.containers[0].comand"' in result.stderr, result.stderr


def test_kubectl_explain_describes_the_worker_containers(harness: Harness):
    result = subprocess.run([str(_kubectl()), f"--kubeconfig={harness.kubeconfig}", "explain",
                             "trainingjob.spec.template.spec.containers"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "KIND:       TrainingJob" in result.stdout, result.stdout
    fields = set(re.findall(r"^  (\w+)\t", result.stdout, flags=re.MULTILINE))
    assert {"command", "args", "env", "image", "name", "ports", "resources", "volumeMounts"} <= fields, result.stdout


def test_the_embedded_schema_is_the_running_api_servers_pod_template_spec(api: client.ApiClient):
    request = api.param_serialize(method="GET", resource_path="/openapi/v3/api/v1", auth_settings=["BearerToken"])
    response = api.call_api(*request)
    response.read()
    assert response.status == 200, response.data[:500]
    served = pod_template_schema.pod_template_schema(json.loads(response.data))
    difference = _first_difference(served, pod_template_schema.load(), "")
    assert difference is None, f"stale at {difference}: run `python -m stretto.api.pod_template_schema --openapi " \
                               "<the served /openapi/v3/api/v1>`"


def _first_difference(served: Any, checked_in: Any, path: str) -> str | None:
    if isinstance(served, dict) and isinstance(checked_in, dict):
        for key in sorted(set(served) | set(checked_in)):
            if key not in served or key not in checked_in:
                return f"{path}.{key} ({'checked in' if key in checked_in else 'served'} only)"
            if (found := _first_difference(served[key], checked_in[key], f"{path}.{key}")) is not None:
                return found
        return None
    return None if served == checked_in else f"{path}: served {served!r:.200}, checked in {checked_in!r:.200}"


def _kubectl() -> Path:
    binaries = cached_binaries()
    assert binaries is not None and binaries.kubectl.is_file(), \
        "kubectl is missing from the dev cluster's binaries: run `stretto dev-cluster up` once to build them"
    return binaries.kubectl


# --- valid edge cases: accepted, and their workers run -------------------------------------------------------
def _job(name: str, **spec: Any) -> dict[str, Any]:
    body = merged(CORPUS["base"], {"metadata": {"name": name}, "spec": spec})
    body["spec"]["workers"] = spec.get("workers", {"min": 1, "max": 1})
    return body


FULL_TEMPLATE = {
    "metadata": {"labels": {"team": "vision", "app.kubernetes.io/part-of": "research"},
                 "annotations": {"example.com/owner": "ada"}},
    "spec": {
        "restartPolicy": "Never",
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "10Gi"}},
                    {"name": "config", "configMap": {"name": "training-config", "optional": True}}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 1000},
        "containers": [
            {"name": "trainer", "image": "example.com/trainer:1", "imagePullPolicy": "IfNotPresent",
             "command": ["torchrun", "train.py"], "args": ["--lr", "0.1"],
             "env": [{"name": "LR", "value": "0.1"},
                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
             "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}],
             "readinessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 5},
             "livenessProbe": {"tcpSocket": {"port": 9090}},
             "resources": {"limits": {"cpu": 64, "memory": "512Gi", "ephemeral-storage": "100Gi"}},
             "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "config", "mountPath": "/etc/train"}],
             "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}},
            {"name": "log-shipper", "image": "example.com/shipper:2",
             "env": [{"name": "STRETTO_JOB_LOGS", "value": "/data/logs"}],
             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
        ],
    },
}

VALID = {
    # the name at its limit: the Service, the pods and their hostnames still fit (worker 1023: tests/api)
    "name-at-the-limit": _job("a" * (JOB_NAME_MAX_LENGTH - 4) + "-max"),
    "gpu-share-without-gpus-per-worker": _job("shared", gpuShare={"memory": "10Gi", "maxUtilization": 50}),
    "full-pod-template": _job("full-template", template=FULL_TEMPLATE),
    "init-and-sidecar-containers": _job("with-init", template={"spec": {
        "initContainers": [{"name": "fetch-data", "image": "example.com/fetch:1", "command": ["fetch"]},
                           {"name": "metrics-proxy", "image": "example.com/proxy:1", "restartPolicy": "Always"}],
        "containers": [{"name": "trainer", "image": "example.com/trainer:1"}]}}),
    "whole-node-with-affinity": _job("whole-node", gpusPerWorker=8, template={"spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": contracts.GPU_PRODUCT_LABEL, "operator": "Exists"}]}]}}},
        "containers": [{"name": "trainer", "image": "example.com/trainer:1"}]}}),
    "adaptive-with-many-batch-sizes": _job("gns-sizes", adaptation={
        "mode": "gns", "batchSizes": [16, 32, 64, 128, 256, 512, 1024, 2048], "initialBatchSize": 16}),
    "generated-name": merged(_job("unused"), {"metadata": {"name": None, "generateName": "swept-"}}),
}


@pytest.mark.parametrize("case", sorted(VALID))
def test_a_valid_edge_case_is_accepted_and_its_workers_run(core, custom, namespace, case):
    created = create(custom, namespace, copy.deepcopy(VALID[case]))
    name = created["metadata"]["name"]
    pods = wait_for(lambda: running_pods(core, namespace, name, 1), 120, f"the worker of {case} to run")
    pod = pods[0]
    assert len(pod.spec.hostname) <= 63 and pod.spec.subdomain == contracts.headless_service_name(name)
    core.read_namespaced_service(contracts.headless_service_name(name), namespace)
    status = wait_for(lambda: (s := get_job(custom, namespace, name).get("status")) and s.get("phase") == "Running"
                      and s, 60, f"{case} to report Running")
    accepted = next(c for c in status["conditions"] if c["type"] == "WorkersAccepted")
    assert accepted["status"] == "True", accepted
    stored = created["spec"]["template"]
    assert stored == VALID[case]["spec"]["template"], "the API server changed the template the user wrote"


# --- a poison job beside healthy ones -------------------------------------------------------------------------
HEALTHY = 5


def _short_job(name: str) -> dict[str, Any]:
    return _job(name, workers={"min": 1, "max": 2}, work={"epochs": 4, "samplesPerEpoch": 50000},
                profile={"model": "resnet18"}, adaptation={"mode": "none", "batchSizes": [128]})


def _poison_job() -> dict[str, Any]:
    """Valid for the CRD, not for a pod: dnsPolicy None needs a dnsConfig (one of the pod validation's many
    cross-field rules no schema carries); a ResourceQuota or LimitRange in the namespace refuses the same way."""
    return merged(_short_job("poison"), {"spec": {"template": {"spec": {"dnsPolicy": "None"}}}})


def test_a_job_whose_workers_the_api_refuses_waits_alone_and_says_why(harness: Harness, core, custom, namespace):
    if harness.cluster is None:  # a missing prerequisite fails loudly, it is never skipped
        pytest.fail("this test needs the local control plane (the training emulator plays kwok workers)")
    operator_log_start = len(harness.log("operator"))
    wait_for(lambda: _http_ok(harness.progress_port, "/healthz"), 60, "the operator's progress server")
    harness.configure_operator({**TEST_OPERATOR_CONFIG, "timeScale": TIME_SCALE})
    emulator = harness.start_emulator(time_scale=TIME_SCALE, namespaces=[namespace])
    try:
        started = time.monotonic()
        create(custom, namespace, _poison_job())
        for i in range(HEALTHY):
            create(custom, namespace, _short_job(f"healthy-{i}"))
        succeeded_after: dict[str, float] = {}

        def all_succeeded() -> bool:
            for i in range(HEALTHY):
                name = f"healthy-{i}"
                if name not in succeeded_after and get_job(custom, namespace, name).get("status", {}).get(
                        "phase") == "Succeeded":
                    succeeded_after[name] = round(time.monotonic() - started, 1)
            return len(succeeded_after) == HEALTHY

        wait_for(all_succeeded, 180, f"all {HEALTHY} healthy jobs to succeed", interval=1.0)
        print(f"\nhealthy jobs Succeeded after (s): {dict(sorted(succeeded_after.items()))}")
        poison = get_job(custom, namespace, "poison")["status"]
        poison_age = round(time.monotonic() - started, 1)
    finally:
        harness.kill(emulator.name)
        harness.configure_operator(TEST_OPERATOR_CONFIG)

    print(f"poison job after {poison_age} s: phase {poison['phase']}, message {poison['message']!r}")
    accepted = next(c for c in poison["conditions"] if c["type"] == "WorkersAccepted")
    print(f"poison WorkersAccepted: {accepted}")
    assert poison["phase"] == "Pending"
    assert accepted["status"] == "False" and accepted["reason"] == "Invalid", accepted
    assert "worker 0" in accepted["message"] and "spec.dnsConfig: Required value" in accepted["message"], accepted
    assert poison["message"] == accepted["message"]
    events = [e for e in core.list_namespaced_event(namespace).items
              if e.involved_object.name == "poison" and e.reason == "WorkersRefused"]
    assert len(events) == 1, [(e.reason, e.message, e.count) for e in events]
    assert events[0].type == "Warning" and events[0].message == accepted["message"]
    print(f"poison events: {[(e.type, e.reason, e.message) for e in events]}")
    log = harness.log("operator")[operator_log_start:]
    assert not re.search(r"round \d+ failed", log), log[-4000:]
    assert "failed; the other jobs go on" not in log and "Traceback" not in log, log[-4000:]
    # Records in the operator's format (asctime levelname name: message), so a second handler cannot double them.
    refusals = re.findall(rf"^\S+ \S+ WARNING stretto\.operator\.reconciler: {namespace}/poison: the API server "
                          "refused worker 0", log, flags=re.MULTILINE)
    assert len(refusals) == 1, log[-4000:]
    print(f"operator log: {len(log.splitlines())} lines, no failed round, the refusal logged once")


def test_pod_security_on_the_namespace_refuses_a_privileged_worker_and_the_job_says_so(core, custom):
    """What the README tells a platform team: Pod Security admission locks pod fields down, per namespace."""
    namespace = f"baseline-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "baseline"}}})
    try:
        create(custom, namespace, _job("host-network", template={"spec": {
            "hostNetwork": True, "containers": [{"name": "trainer", "image": "example.com/trainer:1"}]}}))

        def refused() -> dict[str, Any] | None:
            conditions = (get_job(custom, namespace, "host-network").get("status") or {}).get("conditions") or []
            accepted = next((c for c in conditions if c["type"] == "WorkersAccepted"), {})
            return accepted if accepted.get("status") == "False" else None

        accepted = wait_for(refused, 60, "the job to say its worker was refused")
        assert accepted["reason"] == "Forbidden", accepted
        assert 'violates PodSecurity "baseline:latest"' in accepted["message"], accepted
        assert "hostNetwork=true" in accepted["message"], accepted
        assert not core.list_namespaced_pod(namespace).items
    finally:
        core.delete_namespace(namespace)


def test_a_refused_job_fixed_by_its_user_runs_and_says_so_once(core, custom, namespace):
    create(custom, namespace, _poison_job())

    def condition(status: str) -> dict[str, Any] | None:
        conditions = (get_job(custom, namespace, "poison").get("status") or {}).get("conditions") or []
        accepted = next((c for c in conditions if c["type"] == "WorkersAccepted"), {})
        return accepted if accepted.get("status") == status else None

    wait_for(lambda: condition("False"), 60, "the poison job to be refused")
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "poison", {"spec": {"template": {
        "spec": {"dnsConfig": {"nameservers": ["10.96.0.10"]}}}}})
    wait_for(lambda: running_pods(core, namespace, "poison", 1) or running_pods(core, namespace, "poison", 2), 90,
             "the fixed job's workers to run")  # elastic, 1 to 2 workers
    accepted = wait_for(lambda: condition("True"), 60, "the fixed job to say its plan is accepted")
    assert accepted["reason"] == "Accepted", accepted
    reasons = [e.reason for e in core.list_namespaced_event(namespace).items if e.involved_object.name == "poison"
               and e.reason in ("WorkersRefused", "WorkersAccepted")]
    assert sorted(reasons) == ["WorkersAccepted", "WorkersRefused"], reasons
