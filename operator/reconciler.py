"""Apply a TrainingJob's worker plan through the API, and write its status back.

Called from kopf event handlers and from the operator's periodic loop alike; every step is
idempotent (deterministic names, 409 and 404 tolerated), so concurrent or repeated calls, or a call
after a crash half-way through, converge on the same pods.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.operator import events, kube
from stretto.operator.job_status import derive_status
from stretto.operator.pod_builder import headless_service, worker_pod
from stretto.operator.reconcile import plan_workers

log = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_FINAL_PHASES = ("Succeeded", "Failed")


def desired_workers(job: TrainingJob) -> int:
    """Workers this job should run. The walking skeleton runs `workers.min`; the round decides later."""
    return job.spec.workers.min


def _list_workers(namespace: str, job_name: str) -> list[dict[str, Any]]:
    selector = f"{contracts.LABEL_JOB}={job_name},{contracts.LABEL_ROLE}={contracts.ROLE_WORKER}"
    pods = kube.core().list_namespaced_pod(namespace, label_selector=selector)
    return [kube.api_client().sanitize_for_serialization(p) for p in pods.items]


def _owned_by(pod: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in pod.get("metadata", {}).get("ownerReferences") or [])


def _create(kind: str, namespace: str, body: dict[str, Any]) -> bool:
    try:
        if kind == "pod":
            kube.core().create_namespaced_pod(namespace, body)
        else:
            kube.core().create_namespaced_service(namespace, body)
        return True
    except ApiException as error:
        if error.status == 409:
            return False
        raise


def _delete_pod(namespace: str, name: str) -> bool:
    try:
        kube.core().delete_namespaced_pod(name, namespace)
        return True
    except ApiException as error:
        if error.status == 404:
            return False
        raise


def _namespace_terminating(error: ApiException) -> bool:
    return error.status == 403 and "NamespaceTerminating" in (error.body or "")


def reconcile(job_body: dict[str, Any]) -> dict[str, Any] | None:
    """Bring one TrainingJob's workers and Service to the desired state; return the new status."""
    try:
        return _reconcile(job_body)
    except ApiException as error:
        if _namespace_terminating(error) or error.status == 404:
            return None  # the job is going away with its namespace; nothing left to converge
        raise


def _reconcile(job_body: dict[str, Any]) -> dict[str, Any] | None:
    metadata = job_body["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], metadata["uid"]
    if metadata.get("deletionTimestamp"):
        return None  # garbage collection removes the workers through their ownerReferences
    with _locks[(namespace, name)]:
        try:
            job = TrainingJob.model_validate(job_body)
        except ValidationError as error:  # the CRD schema should have refused it; say so, never crash
            _patch_status(namespace, name, {"phase": "Failed", "message": f"invalid spec: {error}"})
            return None
        current_status = job_body.get("status") or {}
        if current_status.get("phase") in _FINAL_PHASES:
            return current_status

        pods = [p for p in _list_workers(namespace, name) if _owned_by(p, uid)]
        desired = desired_workers(job)
        plan = plan_workers(desired, pods)
        if _create("service", namespace, headless_service(job_body)):
            log.info("%s/%s: created headless service", namespace, name)
        for index in plan.create:
            if _create("pod", namespace, worker_pod(job_body, index)):
                events.record(job_body, "CreatedWorker", f"created worker {index} of {desired}")
        for pod_name in plan.delete + plan.replace:
            if _delete_pod(namespace, pod_name):
                events.record(job_body, "DeletedWorker", f"deleted {pod_name} (desired workers: {desired})")
        if plan.create or plan.delete or plan.replace:
            pods = [p for p in _list_workers(namespace, name) if _owned_by(p, uid)]

        status = derive_status(desired, pods, job.spec.gpus_per_worker, current_status.get("conditions"))
        status["observedGeneration"] = metadata.get("generation")
        if _differs(current_status, status):
            if status["phase"] != current_status.get("phase"):
                events.record(job_body, status["phase"], status["message"], warning=status["phase"] == "Failed")
            _patch_status(namespace, name, status)
        return status


def _differs(current: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(current.get(key) != value for key, value in new.items())


def _patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    try:
        kube.custom().patch_namespaced_custom_object_status(
            contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name,
            {"status": status},
        )
    except ApiException as error:
        if error.status != 404:  # deleted meanwhile: nothing to report on
            raise


def list_jobs() -> list[dict[str, Any]]:
    result = kube.custom().list_cluster_custom_object(contracts.GROUP, contracts.VERSION,
                                                      contracts.TRAININGJOB_PLURAL)
    return list(result.get("items", []))


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return dict(kube.custom().get_namespaced_custom_object(
            contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name))
    except ApiException as error:
        if error.status == 404:
            return None
        raise
