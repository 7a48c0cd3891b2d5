"""The TrainingJob models: defaults, Python-side validation, and the generated CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from stretto import contracts
from stretto.api import crd
from stretto.api.models import JOB_NAME_MAX_LENGTH, TrainingJob, TrainingJobSpec
from stretto.api.quantity import format_bytes, format_cpu, parse_bytes, parse_quantity

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workers": {"min": 1, "max": 4},
        "work": {"epochs": 3, "samplesPerEpoch": 1000},
        "template": {"spec": {"containers": [{"name": "t", "image": "img"}]}},
    }
    base.update(overrides)
    return base


def test_defaults_fill_in_what_a_researcher_leaves_out():
    parsed = TrainingJobSpec.model_validate(spec())
    assert parsed.gpus_per_worker == 1
    assert parsed.weight == 1.0
    assert parsed.checkpoint.grace_period_seconds == 30
    assert parsed.gpu_share is None and parsed.adaptation is None


def test_tenant_defaults_to_the_namespace():
    job = TrainingJob.model_validate({"metadata": {"name": "j", "namespace": "team-a"}, "spec": spec()})
    assert job.tenant == "team-a"
    assert TrainingJob.model_validate({"metadata": {"name": "j"}, "spec": spec(tenant="x")}).tenant == "x"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"workers": {"min": 3, "max": 2}}, "workers.min must not exceed workers.max"),
    ({"workers": {"min": 0, "max": 2}}, "workers.min"),
    ({"gpusPerWorker": 0}, "gpusPerWorker"),
    ({"adaptation": {"mode": "turbo", "batchSizes": [1]}}, "adaptation.mode"),
    ({"adaptation": {"batchSizes": [32, 64], "initialBatchSize": 48}}, "initialBatchSize must be one of"),
    ({"adaptation": {"batchSizes": []}}, "adaptation.batchSizes"),
    ({"gpuShare": {"memory": "300Gi"}}, "at most 288Gi"),
    ({"gpuShare": {"memory": "8Gi", "minUtilization": 70, "maxUtilization": 50}}, "minUtilization must not"),
    ({"gpuShare": {"memory": "8Gi"}, "gpusPerWorker": 2}, "gpusPerWorker and gpuShare exclude each other"),
    ({"gpuShare": {"memory": "8Gi"}, "gpusPerWorker": 1}, "gpusPerWorker and gpuShare exclude each other"),
    ({"adaptation": {"batchSizes": [32, 32, 64]}}, "must not repeat a size"),
    ({"template": {"spec": {"nodeName": "n", "containers": [{"name": "t", "image": "i"}]}}}, "Stretto sets nodeName"),
    ({"template": {"spec": {"containers": [{"name": "t", "image": "i", "resources": {
        "limits": {"nvidia.com/gpu": 4}}}]}}}, "limits must not name them"),
    ({"template": {"spec": {"containers": [{"name": "t", "image": "i"}, {"name": "s", "image": "i", "resources": {
        "requests": {"stretto.io/gpu-share": 1}}}]}}}, "requests must not name them"),
    ({"template": {"spec": {"containers": [{"name": "t", "image": "i", "env": [{"name": "PET_NNODES"}]}]}}},
     "must not set PET_*"),
    ({"template": {"spec": {"containers": [{"name": "t", "image": "i", "resources": {
        "requests": {"cpu": 4}}}]}}}, "must not request cpu or memory"),
    ({"template": {"spec": {"restartPolicy": "Sometimes", "containers": [{"name": "t", "image": "i"}]}}},
     "restartPolicy"),
    ({"template": {"metadata": {"labels": {"stretto.io/job": "x"}}, "spec": {"containers": [
        {"name": "t", "image": "i"}]}}}, "Stretto sets the labels under stretto.io/"),
    ({"template": {"spec": {"containers": []}}}, "template.spec.containers"),
    ({"work": {"epochs": 0, "samplesPerEpoch": 1}}, "work.epochs"),
    ({"weight": 0}, "weight"),
])
def test_invalid_specs_name_the_field(overrides, message):
    with pytest.raises(ValidationError) as refused:
        TrainingJobSpec.model_validate(spec(**overrides))
    described = " ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in refused.value.errors())
    assert message in described, described


def test_a_share_without_gpus_per_worker_defaults_to_one_gpu():
    parsed = TrainingJobSpec.model_validate(spec(gpuShare={"memory": "8Gi"}))
    assert parsed.gpus_per_worker == 1 and parsed.gpu_share is not None


def test_sidecars_keep_their_own_env_and_requests():
    containers = [{"name": "t", "image": "i"},
                  {"name": "s", "image": "i", "env": [{"name": "PET_X", "value": "1"}],
                   "resources": {"requests": {"cpu": "1"}}}]
    TrainingJobSpec.model_validate(spec(template={"spec": {"containers": containers}}))


@pytest.mark.parametrize(("name", "ok"), [
    ("a" * JOB_NAME_MAX_LENGTH, True), ("a" * (JOB_NAME_MAX_LENGTH + 1), False), ("1job", False),
    ("my.job", False), ("job-1", True)])
def test_job_names_are_limited_so_every_derived_name_fits(name, ok):
    body = {"metadata": {"name": name}, "spec": spec()}
    if not ok:
        with pytest.raises(ValidationError, match="DNS-1035 label of at most"):
            TrainingJob.model_validate(body)
        return
    TrainingJob.model_validate(body)
    assert len(contracts.worker_pod_name(name, 1023)) <= 63
    assert len(contracts.headless_service_name(name)) <= 63


def test_template_keeps_fields_stretto_does_not_check():
    template = {"metadata": {"labels": {"a": "b"}},
                "spec": {"nodeSelector": {"x": "y"},
                         "containers": [{"name": "t", "image": "i", "command": ["python", "train.py"]}]}}
    parsed = TrainingJobSpec.model_validate(spec(template=template))
    dumped = parsed.template.model_dump(by_alias=True, exclude_none=True)
    assert dumped["spec"]["nodeSelector"] == {"x": "y"}
    assert dumped["spec"]["containers"][0]["command"] == ["python", "train.py"]


@pytest.mark.parametrize(("text", "value"), [
    ("10Gi", 10 * 2**30), ("512Mi", 512 * 2**20), ("1.5Gi", int(1.5 * 2**30)), ("1G", 10**9), ("42", 42),
])
def test_memory_quantities(text, value):
    assert parse_bytes(text) == value


def test_quantity_formatting_round_trips():
    assert format_bytes(10 * 2**30) == "10Gi"
    assert format_bytes(3 * 2**20 + 1) == str(3 * 2**20 + 1)
    assert format_cpu(3) == "3" and format_cpu(1.5) == "1500m"
    assert parse_quantity("500m") == parse_quantity("0.5")
    with pytest.raises(ValueError, match="invalid quantity"):
        parse_quantity("ten gigs")


@pytest.mark.parametrize("path", [crd.CRD_PATH, crd.CHART_CRD_PATH], ids=["manifests", "helm-chart"])
def test_checked_in_crd_matches_the_models(path):
    assert path.read_text() == crd.render(), f"{path} is stale: run `python -m stretto.api.crd`"


def test_crd_schema_is_structural():
    schema = crd.trainingjob_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "$ref" not in node and "title" not in node and "allOf" not in node, path
            assert "anyOf" not in node or node.get("x-kubernetes-int-or-string"), path
            if "properties" in node or "items" in node:
                assert node.get("type") in ("object", "array"), path
            for key, child in node.get("properties", {}).items():
                assert "type" in child or child.get("x-kubernetes-preserve-unknown-fields") or child.get(
                    "x-kubernetes-int-or-string"), f"{path}.{key}"
                walk(child, f"{path}.{key}")
            if "items" in node:
                walk(node["items"], f"{path}[]")
            if isinstance(node.get("additionalProperties"), dict):
                walk(node["additionalProperties"], f"{path}{{}}")

    walk(schema, "")


def _at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return node


def test_the_template_is_core_v1s_pod_template_spec_with_stretto_rules_on_top():
    spec_schema = crd.trainingjob_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    template = spec_schema["properties"]["template"]
    assert "x-kubernetes-preserve-unknown-fields" not in template
    container = _at(template, "spec.containers.[]")
    assert {"command", "args", "env", "ports", "resources", "volumeMounts"} <= set(container["properties"])
    assert _at(template, "spec.containers")["x-kubernetes-list-type"] == "map"
    assert _at(template, "spec.containers")["maxItems"] == 16
    assert _at(template, "spec.containers.[].ports.[].protocol")["default"] == "TCP"  # a list-map key
    assert _at(template, "spec.containers.[].resources.limits")["additionalProperties"][
        "x-kubernetes-int-or-string"] is True
    assert "ephemeralContainers" not in _at(template, "spec")["properties"]
    rules = " ".join(r["message"] for r in _at(template, "spec")["x-kubernetes-validations"])
    assert "Stretto sets nodeName" in rules and "Stretto sets schedulerName" in rules
    assert "default" not in spec_schema["properties"]["gpusPerWorker"]  # CEL must see whether the user set it
    assert spec_schema["properties"]["adaptation"]["properties"]["batchSizes"]["x-kubernetes-list-type"] == "set"


def test_the_overlay_refuses_a_field_kubernetes_does_not_have():
    with pytest.raises(ValueError, match="does not have"):
        crd.overlay({"type": "object", "properties": {"command": {"type": "array"}}},
                    {"properties": {"comand": {"type": "array"}}})


def test_example_manifests_are_valid_trainingjobs():
    examples = sorted(EXAMPLES.glob("*.yaml"))
    assert examples, "manifests/examples/ has no TrainingJob"
    for path in examples:
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] == "TrainingJob", path
            TrainingJob.model_validate(document)
