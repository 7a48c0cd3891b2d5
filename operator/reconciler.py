"""Apply a TrainingJob's plan from the latest round through the API, and write its status back.

Called from kopf event handlers and from the round loop alike; every step is idempotent
(deterministic names, 409 and 404 tolerated), so concurrent or repeated calls, or a call after a
crash half-way through, converge on the same pods. Shrinking asks first: a worker to be removed is
annotated `stretto.io/checkpoint-requested` (the SDK sees it), and deleted (SIGTERM, then the
job's grace period) only after the checkpoint notice has passed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.api.quantity import format_bytes, format_cpu
from stretto.operator import accounting, events, kube
from stretto.operator.job_status import Refusal, derive_status
from stretto.operator.metrics import JOB_RHO, SCALE_EVENTS
from stretto.operator.pod_builder import headless_service, worker_pod
from stretto.operator.reconcile import plan_workers, planned_nodes, worker_index
from stretto.operator.snapshot_builder import JobPlan, job_key

log = logging.getLogger(__name__)
_locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
_FINAL_PHASES = ("Succeeded", "Failed")
NO_ROUND_YET = "waiting for the first scheduling round"


class _Channel:
    """The progress channel, once the operator has started it (None in unit tests and before start-up)."""

    current: Any = None


_channel = _Channel()


def set_progress_channel(channel: Any) -> None:
    _channel.current = channel


def with_live_progress(job_body: dict[str, Any]) -> dict[str, Any]:
    """The job with the furthest progress of the ledger and the stored status (another replica, or this
    one before a restart, may have stored a report this ledger has not seen)."""
    channel = _channel.current
    metadata = job_body["metadata"]
    namespace, name, uid = metadata["namespace"], metadata["name"], str(metadata["uid"])
    stored = (job_body.get("status") or {}).get("progress")
    if channel is None or (stored is None and channel.ledger.get(namespace, name, uid) is None):
        return job_body  # nothing reported yet (a deleted namesake's reports are not this job's)
    record = channel.ledger.restore(namespace, name, stored, uid=uid)
    work = job_body["spec"]["work"]
    progress = record.progress_status(float(work["epochs"] * work["samplesPerEpoch"]))
    return {**job_body, "status": {**(job_body.get("status") or {}), "progress": progress}}


def forget_gone_jobs(jobs: list[dict[str, Any]]) -> None:
    """Drop the progress records of TrainingJobs that no longer exist (deleted, or re-created: new uid)."""
    channel = _channel.current
    if channel is not None:
        channel.ledger.retain({(j["metadata"]["namespace"], j["metadata"]["name"], str(j["metadata"]["uid"]))
                               for j in jobs})


class _RoundPlans:
    """The latest round's plans, shared by the round loop (writer) and every reconcile (readers)."""

    def __init__(self) -> None:
        self.plans: Mapping[str, JobPlan] = MappingProxyType({})
        self.round_index: int | None = None
        self.checkpoint_notice_seconds = 10.0
        self.time_scale = 1.0  # training seconds per wall second: predictions are in training seconds


_round = _RoundPlans()


def set_plans(plans: Mapping[str, JobPlan], round_index: int, checkpoint_notice_seconds: float,
              time_scale: float = 1.0) -> None:
    _round.plans, _round.round_index = plans, round_index
    _round.checkpoint_notice_seconds, _round.time_scale = checkpoint_notice_seconds, time_scale


def clear_plans() -> None:
    """No plans (not leading, or no round yet): reconciles then change nothing in the cluster."""
    _round.plans, _round.round_index = MappingProxyType({}), None


def current_plan(namespace: str, name: str) -> JobPlan | None:
    """This job's plan, or None before any round has seen it (it then runs nothing yet)."""
    return _round.plans.get(job_key(namespace, name))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _checkpoint_requested_at(pod: dict[str, Any]) -> dt.datetime | None:
    value = (pod["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_CHECKPOINT_REQUESTED)
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return _now()  # unreadable: treat as just requested


def _annotate(namespace: str, name: str, annotations: dict[str, str | None]) -> None:
    try:
        kube.core().patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})
    except ApiException as error:
        if error.status != 404:
            raise


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


class PlanRefused(Exception):
    """The API server refused a step of one job's plan; it becomes that job's condition, not the round's error."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.summary)
        self.refusal = refusal


def _refusal(what: str, error: ApiException) -> Refusal:
    """The API's own StatusReason and message (its Status body), or the HTTP reason when there is none."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return Refusal(what=what, reason=str(body.get("reason") or error.reason or error.status),
                   message=str(body.get("message") or error.reason or f"HTTP {error.status}"))


@contextlib.contextmanager
def _refused_as(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        if _namespace_terminating(error) or error.status == 404:
            raise  # the job is going away with its namespace
        raise PlanRefused(_refusal(what, error)) from error
    except ValidationError as error:  # the client's own models refused the manifest before sending it
        first = error.errors()[0]
        message = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise PlanRefused(Refusal(what=what, reason="ClientValidation", message=message,
                                  by="the operator's Kubernetes client")) from error


def reconcile(job_body: dict[str, Any], *, round_pass: bool = False) -> dict[str, Any] | None:
    """Bring one TrainingJob's workers and Service to the desired state; return the new status.

    `round_pass` (the round loop's own pass, once a round) also advances the job's accounting and
    prediction; reconciles triggered by events keep them, so a status write never triggers another.
    """
    try:
        return _reconcile(job_body, round_pass)
    except ApiException as error:
        if _namespace_terminating(error) or error.status == 404:
            return None  # the job is going away with its namespace; nothing left to converge
        raise


def _reconcile(job_body: dict[str, Any], round_pass: bool) -> dict[str, Any] | None:
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

        if _round.round_index is None:
            return None  # no round decided anything yet (start-up, or a replica that does not lead)
        job_body = with_live_progress(job_body)
        pods = [p for p in _list_workers(namespace, name) if _owned_by(p, uid)]
        progress = (job_body.get("status") or {}).get("progress") or {}
        if progress.get("samplesDone", 0) >= job.spec.work.epochs * job.spec.work.samples_per_epoch:
            return _finish(job_body, pods, f"finished {progress.get('epoch', 0):g} epochs")
        if pods and all((p.get("status") or {}).get("phase") == "Succeeded" for p in pods):
            return _finish(job_body, pods, f"all {len(pods)} workers exited 0 "
                                           f"(last report: {progress.get('epoch', 0):g} epochs)")
        job_plan = current_plan(namespace, name)
        desired = job_plan.workers if job_plan is not None else 0
        refusal: Refusal | None = None
        try:
            changed = _apply(job_body, desired, pods, job_plan)
        except PlanRefused as refused:  # this job's problem: say so on the job, let every other job go on
            refusal, changed = refused.refusal, True
        if changed:
            pods = [p for p in _list_workers(namespace, name) if _owned_by(p, uid)]

        status = derive_status(desired, pods, job.spec.gpus_per_worker, current_status.get("conditions"),
                               waiting_reason=job_plan.reason if job_plan is not None else NO_ROUND_YET,
                               refusal=refusal)
        status["observedGeneration"] = metadata.get("generation")
        if job_plan is not None:
            status["allocation"] |= _planned_allocation(job_plan)
        if round_pass:
            status["prediction"] = _prediction(job_plan, job_body) if job_plan is not None else {}
            if "rho" in status["prediction"]:
                JOB_RHO.labels(namespace, name).set(status["prediction"]["rho"])
            status["accounting"] = accounting.advance(current_status.get("accounting"),
                                                      status["allocation"]["gpus"], _now())
        # status.progress is the progress channel's: it stores each report before acknowledging it. A
        # copy written here could land after a newer report's and undo it.
        if _differs(current_status, status):
            if status["phase"] != current_status.get("phase"):
                events.record(job_body, status["phase"], status["message"], warning=status["phase"] == "Failed")
            _record_refusal_change(job_body, refusal)
            _patch_status(namespace, name, status)
        return status


def _accepted_condition(conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
    return next((c for c in conditions or [] if c.get("type") == "WorkersAccepted"), {})


def _record_refusal_change(job_body: dict[str, Any], refusal: Refusal | None) -> None:
    """One event when the API starts refusing the job's plan (or refuses it for a new reason), one when it stops.

    Compared with the stored status, read afresh under the job's lock: the body a reconcile was handed
    may predate the previous reconcile's status write.
    """
    metadata = job_body["metadata"]
    handed = _accepted_condition((job_body.get("status") or {}).get("conditions"))
    if refusal is None and handed.get("status") != "False":
        return  # accepted before and now: nothing to tell
    stored = get_job(metadata["namespace"], metadata["name"]) or job_body
    before = _accepted_condition((stored.get("status") or {}).get("conditions"))
    if refusal is not None:
        if before.get("status") != "False" or before.get("message") != refusal.summary:
            events.record(job_body, "WorkersRefused", refusal.summary, warning=True)
            log.warning("%s/%s: %s (%s)", metadata["namespace"], metadata["name"], refusal.summary, refusal.reason)
    elif before.get("status") == "False":
        events.record(job_body, "WorkersAccepted", "the API server accepts the round's plan again")


def _finish(job_body: dict[str, Any], pods: list[dict[str, Any]], message: str) -> dict[str, Any]:
    """All the work is done (as the job reported it, or as its workers' exit says): remove the workers
    and mark the job Succeeded."""
    metadata = job_body["metadata"]
    for pod in pods:
        _delete_pod(metadata["namespace"], pod["metadata"]["name"])
    previous = (job_body.get("status") or {}).get("conditions")
    status = derive_status(0, [], 0, previous)
    status |= {"phase": "Succeeded", "message": message, "workers": 0, "readyWorkers": 0}
    for condition in status["conditions"]:
        if condition["type"] == "Succeeded":
            condition |= {"status": "True", "reason": "WorkDone", "message": status["message"]}
    events.record(job_body, "Succeeded", status["message"])
    _patch_status(metadata["namespace"], metadata["name"], status)
    return status


def _apply(job_body: dict[str, Any], desired: int, pods: list[dict[str, Any]], job_plan: JobPlan | None) -> bool:
    """Create missing workers, ask surplus ones to checkpoint, remove them after the notice."""
    metadata = job_body["metadata"]
    namespace = metadata["namespace"]
    changed = False
    if desired > 0:
        with _refused_as("the headless Service"):
            if _create("service", namespace, headless_service(job_body)):
                log.info("%s/%s: created headless service", namespace, metadata["name"])
    workers = plan_workers(desired, pods)
    channel = _channel.current
    if workers.create and channel is not None:
        with _refused_as("the progress Secret"):
            channel.ensure_job_secret(job_body)
    extra_env = channel.worker_env(metadata["name"]) if channel is not None else []
    planned = planned_nodes(desired, pods, job_plan.nodes) if job_plan is not None else {}
    for pod in pods:  # a worker still waiting for a node follows the latest round's plan
        index = worker_index(pod)
        node = planned.get(index) if index is not None else None
        annotations = pod["metadata"].get("annotations") or {}
        if node and index not in workers.create and annotations.get(contracts.ANNOTATION_PLANNED_NODE) != node:
            _annotate(namespace, pod["metadata"]["name"], {contracts.ANNOTATION_PLANNED_NODE: node})
    for index in workers.create:
        pod = worker_pod(job_body, index, job_plan, extra_env=extra_env, planned_node=planned.get(index))
        with _refused_as(f"worker {index}"):
            created = _create("pod", namespace, pod)
        if created:
            events.record(job_body, "CreatedWorker", f"created worker {index}; the round gives it {desired} workers")
            SCALE_EVENTS.labels("up").inc()
            changed = True
    by_name = {p["metadata"]["name"]: p for p in pods}
    for pod_name in workers.delete:
        requested = _checkpoint_requested_at(by_name[pod_name])
        if requested is None:
            _annotate(namespace, pod_name, {contracts.ANNOTATION_CHECKPOINT_REQUESTED: _now().isoformat()})
            events.record(job_body, "CheckpointRequested",
                          f"asked {pod_name} to checkpoint: the round gives the job {desired} workers"
                          + (f" ({job_plan.reason})" if job_plan and job_plan.reason else ""))
            _reconcile_after(namespace, metadata["name"], _round.checkpoint_notice_seconds)
            changed = True
        elif (_now() - requested).total_seconds() >= _round.checkpoint_notice_seconds and _delete_pod(
                namespace, pod_name):
            events.record(job_body, "DeletedWorker" if desired else "Suspended",
                          f"removed {pod_name} after its checkpoint notice; {desired} workers remain")
            SCALE_EVENTS.labels("down").inc()
            changed = True
    for pod_name in workers.replace:
        changed |= _delete_pod(namespace, pod_name)
    for pod in pods:  # a worker asked to checkpoint that the round keeps after all: withdraw the request
        name = pod["metadata"]["name"]
        if name not in workers.delete and _checkpoint_requested_at(pod) is not None:
            _annotate(namespace, name, {contracts.ANNOTATION_CHECKPOINT_REQUESTED: None})
    return changed


def _reconcile_after(namespace: str, name: str, seconds: float) -> None:
    """Reconcile the job again once a checkpoint notice has passed: removal waits for the notice, not a round."""
    def again() -> None:
        try:
            job = get_job(namespace, name)
            if job is not None:
                reconcile(job)
        except Exception:  # the next round or pod event converges it anyway
            log.exception("%s/%s: reconcile after the checkpoint notice failed", namespace, name)

    timer = threading.Timer(seconds + 0.05, again)
    timer.daemon = True
    timer.start()


def _planned_allocation(job_plan: JobPlan) -> dict[str, Any]:
    planned: dict[str, Any] = {"plannedWorkers": job_plan.workers, "plannedGpus": job_plan.gpus}
    if job_plan.cpu_per_worker is not None:
        planned["cpuPerWorker"] = format_cpu(job_plan.cpu_per_worker)
    if job_plan.memory_gib_per_worker is not None:
        planned["memoryPerWorker"] = format_bytes(int(job_plan.memory_gib_per_worker * 2**30) // 2**20 * 2**20)
    return planned


def _prediction(job_plan: JobPlan, job_body: dict[str, Any]) -> dict[str, Any]:
    if job_plan.remaining_seconds is None:
        return {}
    finish = _now() + dt.timedelta(seconds=job_plan.remaining_seconds / _round.time_scale)
    prediction: dict[str, Any] = {
        "finishTime": finish.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "remainingSeconds": round(job_plan.remaining_seconds, 1),
        "regimes": [{"batchSize": size, "remainingEpochs": round(epochs, 3)} for size, epochs in job_plan.regimes],
    }
    created = job_body["metadata"].get("creationTimestamp")
    if created and job_plan.isolated_seconds:
        start = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        elapsed = (finish - start).total_seconds() * _round.time_scale
        prediction["rho"] = round(elapsed / job_plan.isolated_seconds, 3)
    return prediction


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
