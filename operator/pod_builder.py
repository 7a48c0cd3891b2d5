"""Turn a TrainingJob into the worker Pods and the headless Service that Kubernetes runs.

Stretto adds to the user's template: the scheduler name, GPU (or GPU-share) limits, the contract
labels and annotations, torchrun elastic rendezvous settings (the PET_* variables Kubeflow's elastic
PyTorchJob sets), a stable DNS name per worker, the checkpoint grace period, and an ownerReference
so deleting the TrainingJob deletes its workers. Pure functions over plain dicts: easy to test.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from stretto import contracts
from stretto.api import pod_template_schema
from stretto.api.models import TrainingJob
from stretto.api.pod_template_schema import quantities_as_strings
from stretto.api.quantity import format_cpu, parse_quantity
from stretto.operator.snapshot_builder import JobPlan

RDZV_MAX_RESTARTS = 3


@functools.cache
def _pod_spec_schema() -> dict[str, Any]:
    """core/v1 PodSpec's schema as the CRD embeds it: parsed once (5 ms a pod otherwise), only ever read."""
    return dict(pod_template_schema.load()["properties"]["spec"])


def owner_reference(job_body: dict[str, Any]) -> dict[str, Any]:
    metadata = job_body["metadata"]
    return {
        "apiVersion": contracts.API_VERSION,
        "kind": contracts.TRAININGJOB_KIND,
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def selector_labels(job_name: str) -> dict[str, str]:
    return {contracts.LABEL_JOB: job_name, contracts.LABEL_ROLE: contracts.ROLE_WORKER}


def rendezvous_env(job: TrainingJob, uid: str, index: int) -> list[dict[str, str]]:
    service = contracts.headless_service_name(job.name)
    endpoint = f"{contracts.worker_pod_name(job.name, 0)}.{service}:{contracts.WORKER_CONTAINER_PORT}"
    workers = job.spec.workers
    values = {
        "PET_NNODES": f"{workers.min}:{workers.max}",
        "PET_NPROC_PER_NODE": str(job.spec.gpus_per_worker),
        "PET_RDZV_BACKEND": "c10d",
        "PET_RDZV_ENDPOINT": endpoint,
        "PET_RDZV_ID": uid,
        "PET_MAX_RESTARTS": str(RDZV_MAX_RESTARTS),
        "PYTHONUNBUFFERED": "1",
        "STRETTO_JOB_NAME": job.name,
        "STRETTO_JOB_NAMESPACE": job.namespace,
        "STRETTO_WORKER_INDEX": str(index),
    }
    return [{"name": name, "value": value} for name, value in values.items()]


def _gpu_limits(job: TrainingJob) -> dict[str, str]:
    if job.spec.gpu_share is not None:
        return {contracts.GPU_SHARE_RESOURCE: "1"}
    return {contracts.GPU_RESOURCE: str(job.spec.gpus_per_worker)}


def _share_annotations(job: TrainingJob) -> dict[str, str]:
    share = job.spec.gpu_share
    if share is None:
        return {}
    return {
        contracts.ANNOTATION_GPU_MEMORY: str(share.memory_bytes),
        contracts.ANNOTATION_GPU_MIN_UTIL: str(share.min_utilization),
        contracts.ANNOTATION_GPU_MAX_UTIL: str(share.max_utilization),
    }


def _apply_cpu_and_memory(resources: dict[str, Any], plan: JobPlan | None) -> None:
    """The round's CPU and memory per worker as requests; a lower limit the user set is raised to match."""
    if plan is None or plan.cpu_per_worker is None or plan.memory_gib_per_worker is None:
        return
    memory_mib = int(plan.memory_gib_per_worker * 1024)
    planned = {"cpu": format_cpu(plan.cpu_per_worker), "memory": f"{memory_mib}Mi"}
    requests = resources.setdefault("requests", {})
    limits = resources.get("limits", {})
    for name, value in planned.items():
        requests[name] = value
        if name in limits and parse_quantity(limits[name]) < parse_quantity(value):
            limits[name] = value


def shared_gpu_additions(container_name: str, *, host_control_root: str = contracts.HOST_CONTROL_ROOT,
                         host_shim_dir: str = contracts.HOST_SHIM_DIR) -> dict[str, list[dict[str, Any]]]:
    """What a worker container on a shared GPU needs: the shim preloaded and its control files mounted.

    Returns ``{"env": [...], "volumeMounts": [...], "volumes": [...]}``. The control directory is
    mounted read-only (the container cannot raise its own limits), the ledger directory read-write,
    both selected per pod by ``subPathExpr`` on the pod UID (unknown while the spec is built). The
    node daemon writes ``<host_control_root>/<pod uid>/<container>/{config,state}/``.
    """
    c = contracts
    base = f"$({c.ENV_POD_UID})/{container_name}"
    return {
        "env": [
            {"name": c.ENV_POD_UID, "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": c.ENV_LD_PRELOAD, "value": f"{c.CONTAINER_SHIM_DIR}/{c.SHIM_LIBRARY_NAME}"},
            {"name": c.ENV_CONTROL_FILE, "value": f"{c.CONTAINER_CONFIG_DIR}/{c.CONTROL_FILE_NAME}"},
            {"name": c.ENV_LEDGER_FILE, "value": f"{c.CONTAINER_STATE_DIR}/{c.LEDGER_FILE_NAME}"},
        ],
        "volumeMounts": [
            {"name": c.VOLUME_CONFIG, "mountPath": c.CONTAINER_CONFIG_DIR, "readOnly": True,
             "subPathExpr": f"{base}/{c.CONFIG_SUBDIR}"},
            {"name": c.VOLUME_STATE, "mountPath": c.CONTAINER_STATE_DIR, "subPathExpr": f"{base}/{c.STATE_SUBDIR}"},
            {"name": c.VOLUME_SHIM, "mountPath": c.CONTAINER_SHIM_DIR, "readOnly": True},
        ],
        "volumes": [
            {"name": c.VOLUME_CONFIG, "hostPath": {"path": host_control_root, "type": "DirectoryOrCreate"}},
            {"name": c.VOLUME_STATE, "hostPath": {"path": host_control_root, "type": "DirectoryOrCreate"}},
            {"name": c.VOLUME_SHIM, "hostPath": {"path": host_shim_dir, "type": "Directory"}},
        ],
    }


def worker_pod(job_body: dict[str, Any], index: int, plan: JobPlan | None = None,
               extra_env: list[dict[str, Any]] | None = None, planned_node: str | None = None) -> dict[str, Any]:
    """The manifest of worker `index` of the TrainingJob whose raw body is `job_body`.

    `plan` is the latest round's decision for the job: it sets the worker's CPU and memory.
    `planned_node` is the node the round's packer chose for this worker (the extender binds it only there).
    `extra_env` is appended to the worker container's environment (the progress channel's).
    """
    job = TrainingJob.model_validate(job_body)
    uid = job_body["metadata"]["uid"]
    template = copy.deepcopy(job_body["spec"]["template"])
    template_meta = template.get("metadata") or {}
    spec = template["spec"]

    labels = {**(template_meta.get("labels") or {}), **selector_labels(job.name),
              contracts.LABEL_WORKER_INDEX: str(index), contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}
    annotations = {**(template_meta.get("annotations") or {}), **_share_annotations(job)}
    if plan is not None:
        annotations[contracts.ANNOTATION_ROUND] = str(plan.round_index)
    if planned_node:
        annotations[contracts.ANNOTATION_PLANNED_NODE] = planned_node

    # The first container trains; sidecars keep what the user gave them. The API server refuses a template
    # that sets what follows (GPU resources, the trainer's cpu and memory requests, nodeName, ...).
    containers = spec["containers"]
    worker = containers[0]
    resources = worker.setdefault("resources", {})
    limits = resources.setdefault("limits", {})
    limits.update(_gpu_limits(job))
    _apply_cpu_and_memory(resources, plan)
    requests = resources.get("requests")
    if requests is not None:  # extended resources: requests must equal limits when given
        requests.update(_gpu_limits(job))
    # The API server refuses a trainer that sets PET_*, STRETTO_* or LD_PRELOAD itself (stretto.api.models).
    worker["env"] = [*worker.get("env", []), *rendezvous_env(job, uid, index), *(extra_env or [])]
    ports = worker.setdefault("ports", [])
    if not any(p.get("containerPort") == contracts.WORKER_CONTAINER_PORT for p in ports):
        ports.append({"name": "rendezvous", "containerPort": contracts.WORKER_CONTAINER_PORT})

    if job.spec.gpu_share is not None:  # the shim enforces the share; the node daemon feeds it
        additions = shared_gpu_additions(worker["name"])
        worker["env"] += additions["env"]
        worker.setdefault("volumeMounts", []).extend(additions["volumeMounts"])
        spec.setdefault("volumes", []).extend(additions["volumes"])

    spec["schedulerName"] = contracts.SCHEDULER_NAME
    spec["hostname"] = contracts.worker_pod_name(job.name, index)
    spec["subdomain"] = contracts.headless_service_name(job.name)
    spec["terminationGracePeriodSeconds"] = job.spec.checkpoint.grace_period_seconds
    spec.setdefault("restartPolicy", "OnFailure")

    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": contracts.worker_pod_name(job.name, index),
            "namespace": job.namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(job_body)],
        },
        "spec": quantities_as_strings(spec, _pod_spec_schema()),
    }


def headless_service(job_body: dict[str, Any]) -> dict[str, Any]:
    """The Service that gives every worker a stable DNS name (<pod>.<service>) for the rendezvous."""
    name = job_body["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": contracts.headless_service_name(name),
            "namespace": job_body["metadata"].get("namespace", "default"),
            "labels": {**selector_labels(name), contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY},
            "ownerReferences": [owner_reference(job_body)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": selector_labels(name),
            "ports": [{"name": "rendezvous", "port": contracts.WORKER_CONTAINER_PORT}],
        },
    }
