"""Apply a TrainingJob's plan from the latest round, writing only what differs from the cluster cache.

The round loop calls `Reconciler.reconcile` for every job once a round (`round_pass`), and for each
job the watches marked dirty in between. Everything it reads comes from the cache; every write goes
through `ClusterWriter`, whose answers update the cache at once, so a second pass over an unchanged
job writes nothing: no Service POST once the Service is known, no status patch unless the status
would change, no event unless something happened. Steps are idempotent (deterministic names, 409 and
404 tolerated), so a crash half-way through converges on the same pods. Shrinking asks first: a
worker to be removed is annotated `stretto.io/checkpoint-requested` (the SDK sees it), and deleted
(SIGTERM, then the job's grace period) only after the checkpoint notice has passed.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.api.quantity import format_bytes, format_cpu
from stretto.operator import accounting
from stretto.operator.cluster_cache import ClusterCache, Kind, owned_by
from stretto.operator.cluster_writes import ClusterWriter
from stretto.operator.events import EventRecorder
from stretto.operator.job_prediction import prediction, settled
from stretto.operator.job_status import PLANNED_FIELDS, Refusal, derive_status, finished_status
from stretto.operator.merge_patch import changes, merged
from stretto.operator.metrics import JOB_RHO, SCALE_EVENTS
from stretto.operator.plan_refusal import PlanRefused, namespace_terminating, refused_as
from stretto.operator.pod_builder import headless_service, worker_pod
from stretto.operator.progress_channel import ProgressChannel
from stretto.operator.reconcile import plan_workers, planned_nodes, worker_index
from stretto.operator.snapshot_builder import JobPlan, job_key

log = logging.getLogger(__name__)
FINAL_PHASES = ("Succeeded", "Failed")
NO_ROUND_YET = "waiting for the first scheduling round"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RoundPlans:
    """The latest round's plans (replaced whole by the round loop; read by every reconcile)."""

    plans: Mapping[str, JobPlan] = field(default_factory=lambda: MappingProxyType({}))
    round_index: int | None = None  # None: no round yet, or this replica does not lead
    checkpoint_notice_seconds: float = 10.0
    time_scale: float = 1.0  # training seconds per wall second: predictions are in training seconds


def _checkpoint_requested_at(pod: dict[str, Any]) -> dt.datetime | None:
    value = (pod["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_CHECKPOINT_REQUESTED)
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None
    except ValueError:
        return _now()  # unreadable: treat as just requested


def _planned_allocation(job_plan: JobPlan) -> dict[str, Any]:
    planned: dict[str, Any] = {"plannedWorkers": job_plan.workers, "plannedGpus": job_plan.gpus}
    if job_plan.cpu_per_worker is not None:
        planned["cpuPerWorker"] = format_cpu(job_plan.cpu_per_worker)
    if job_plan.memory_gib_per_worker is not None:
        planned["memoryPerWorker"] = format_bytes(int(job_plan.memory_gib_per_worker * 2**30) // 2**20 * 2**20)
    return planned


def _accepted(status: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "WorkersAccepted"), {})


class Reconciler:
    """Per-job apply against the cache; owns the job locks, the latest plans and the event recorder."""

    def __init__(self, cache: ClusterCache, channel: ProgressChannel | None = None,
                 recorder: EventRecorder | None = None) -> None:
        self.cache = cache
        self.writer = ClusterWriter(cache)
        self.channel = channel
        self.recorder = recorder or EventRecorder()
        self.round = RoundPlans()
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._services_posted: set[str] = set()  # job uids whose Service this process created or found
        self._specs: dict[tuple[str, int | None], TrainingJob] = {}  # validated spec by (uid, generation)

    # -- plans ----------------------------------------------------------------------------------
    def set_plans(self, plans: Mapping[str, JobPlan], round_index: int, checkpoint_notice_seconds: float,
                  time_scale: float = 1.0) -> None:
        self.round = RoundPlans(MappingProxyType(dict(plans)), round_index, checkpoint_notice_seconds, time_scale)

    def clear_plans(self) -> None:
        """No plans (not leading, or no round yet): reconciles then change nothing in the cluster."""
        self.round = RoundPlans(checkpoint_notice_seconds=self.round.checkpoint_notice_seconds,
                                time_scale=self.round.time_scale)

    # -- progress -------------------------------------------------------------------------------
    def with_live_progress(self, job_body: dict[str, Any]) -> dict[str, Any]:
        """The job with the furthest progress of the ledger and the stored status (another replica, or this
        one before a restart, may have stored a report this ledger has not seen)."""
        channel = self.channel
        metadata = job_body["metadata"]
        namespace, name, uid = metadata["namespace"], metadata["name"], str(metadata["uid"])
        stored = (job_body.get("status") or {}).get("progress")
        if channel is None or (stored is None and channel.ledger.get(namespace, name, uid) is None):
            return job_body  # nothing reported yet (a deleted namesake's reports are not this job's)
        record = channel.ledger.restore(namespace, name, stored, uid=uid)
        work = job_body["spec"]["work"]
        progress = record.progress_status(float(work["epochs"] * work["samplesPerEpoch"]))
        return {**job_body, "status": {**(job_body.get("status") or {}), "progress": progress}}

    def forget_gone_jobs(self, jobs: list[dict[str, Any]]) -> None:
        """Drop what is kept of TrainingJobs that no longer exist (deleted, or re-created: new uid)."""
        alive = {(j["metadata"]["namespace"], j["metadata"]["name"], str(j["metadata"]["uid"])) for j in jobs}
        if self.channel is not None:
            self.channel.ledger.retain(alive)
        uids = {uid for _, _, uid in alive}
        self._services_posted &= uids
        self._specs = {key: spec for key, spec in self._specs.items() if key[0] in uids}

    # -- one job --------------------------------------------------------------------------------
    def reconcile(self, key: str, *, round_pass: bool = False) -> dict[str, Any] | None:
        """Bring the job `key` ("namespace/name") to its plan; return its status (None: nothing to do).

        Every pass advances the job's accounting when its running GPUs change; `round_pass` (the round loop's
        own pass, once a round) also updates its prediction, which the passes between rounds keep.
        """
        try:
            with self._locks[key]:
                return self._reconcile(key, round_pass)
        except ApiException as error:
            if namespace_terminating(error) or error.status == 404:
                return None  # the job is going away with its namespace; nothing left to converge
            raise

    def _spec(self, body: dict[str, Any]) -> TrainingJob:
        metadata = body["metadata"]
        memo = (str(metadata["uid"]), metadata.get("generation"))
        if memo not in self._specs:
            self._specs[memo] = TrainingJob.model_validate(body)
        return self._specs[memo]

    def _reconcile(self, key: str, round_pass: bool) -> dict[str, Any] | None:
        body = self.cache.job(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return None  # garbage collection removes the workers through their ownerReferences
        metadata = body["metadata"]
        namespace, name, uid = metadata["namespace"], metadata["name"], str(metadata["uid"])
        current = body.get("status") or {}
        if current.get("phase") in FINAL_PHASES:
            return current
        try:
            job = self._spec(body)
        except ValidationError as error:  # the CRD schema should have refused it; say so, never crash
            return self._write(body, current, {"phase": "Failed", "message": f"invalid spec: {error}"})
        if self.round.round_index is None:
            return None  # no round decided anything yet (start-up, or a replica that does not lead)
        live = self.with_live_progress(body)
        pods = self.cache.workers_of(key, uid)
        progress = (live.get("status") or {}).get("progress") or {}
        if progress.get("samplesDone", 0) >= job.spec.work.epochs * job.spec.work.samples_per_epoch:
            return self._finish(body, pods, f"finished {progress.get('epoch', 0):g} epochs")
        if pods and all((p.get("status") or {}).get("phase") == "Succeeded" for p in pods):
            return self._finish(body, pods, f"all {len(pods)} workers exited 0 "
                                            f"(last report: {progress.get('epoch', 0):g} epochs)")
        job_plan = self.round.plans.get(job_key(namespace, name))
        desired = job_plan.workers if job_plan is not None else 0
        if job_plan is not None:
            current = self._write_growth_intent(body, current, job_plan)
        refusal: Refusal | None = None
        try:
            if self._apply(live, desired, pods, job_plan):
                pods = self.cache.workers_of(key, uid)  # the writes' answers are in the cache already
        except PlanRefused as refused:  # this job's problem: say so on the job, let every other job go on
            refusal = refused.refusal
            pods = self.cache.workers_of(key, uid)  # what was written before the refusal counts

        status = derive_status(desired, pods, job.spec.gpus_per_worker, current.get("conditions"),
                               waiting_reason=job_plan.reason if job_plan is not None else NO_ROUND_YET,
                               refusal=refusal)
        status["observedGeneration"] = metadata.get("generation")
        if status["phase"] == "Failed":  # for good: nothing is planned for it any more
            status["allocation"] |= dict.fromkeys(PLANNED_FIELDS)
            status["prediction"] = None
        elif job_plan is not None:
            status["allocation"] |= _planned_allocation(job_plan)
        if status["phase"] != "Failed":
            now = _now()
            # The service received changes when the running GPUs do, in whichever pass sees it: the write that
            # says the workers run says since when, and the next round has nothing left to write.
            status["accounting"] = accounting.advance(current.get("accounting"), status["allocation"]["gpus"], now)
            if round_pass:
                new = prediction(job_plan, body, now, self.round.time_scale) if job_plan is not None else {}
                status["prediction"] = settled(current.get("prediction"), new, now)
                if "rho" in status["prediction"]:
                    JOB_RHO.labels(namespace, name).set(status["prediction"]["rho"])
        # status.progress is the progress channel's: it stores each report before acknowledging it. A
        # copy written here could land after a newer report's and undo it.
        self._tell_refusal_change(body, current, refusal)
        return self._write(body, current, status)

    def _write_growth_intent(self, body: dict[str, Any], current: dict[str, Any], job_plan: JobPlan) -> dict[str, Any]:
        """A plan that grows the job is stored before its first new worker is created, so no reader (nor a
        leader that takes over after a crash between the two writes) sees more workers than were allocated.
        A shrink keeps the other order: its surplus workers are marked to checkpoint before the lower count."""
        before = (current.get("allocation") or {}).get("plannedWorkers")
        if before is None or job_plan.workers <= int(before):
            return current  # a new job's first plan goes with its first status: nothing was allocated before
        intent = {"allocation": _planned_allocation(job_plan)}
        metadata = body["metadata"]
        self.writer.patch_status(metadata["namespace"], metadata["name"], str(metadata["uid"]), intent)
        return merged(current, intent)

    def _write(self, body: dict[str, Any], current: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Patch the status when it would change; one event when the phase does (a new job's first Pending
        is no news: its status says so)."""
        if not changes(current, status):
            return current
        metadata = body["metadata"]
        phase = status.get("phase")
        if phase and phase != current.get("phase") and (current.get("phase") or phase != "Pending"):
            self.recorder.record(body, status["phase"], status.get("message", ""), warning=status["phase"] == "Failed")
        self.writer.patch_status(metadata["namespace"], metadata["name"], str(metadata["uid"]), status)
        return status

    def _tell_refusal_change(self, body: dict[str, Any], current: dict[str, Any], refusal: Refusal | None) -> None:
        """One event when the API starts refusing the job's plan (or refuses it for a new reason), one when it stops."""
        before = _accepted(current)
        metadata = body["metadata"]
        if refusal is not None:
            if before.get("status") != "False" or before.get("message") != refusal.summary:
                self.recorder.record(body, "WorkersRefused", refusal.summary, warning=True)
                log.warning("%s/%s: %s (%s)", metadata["namespace"], metadata["name"], refusal.summary, refusal.reason)
        elif before.get("status") == "False":
            self.recorder.record(body, "WorkersAccepted", "the API server accepts the round's plan again")

    def _finish(self, body: dict[str, Any], pods: list[dict[str, Any]], message: str) -> dict[str, Any]:
        """All the work is done (as the job reported it, or as its workers' exit says): remove the workers
        and mark the job Succeeded, with nothing planned and no condition left claiming otherwise."""
        metadata = body["metadata"]
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                self.writer.delete_pod(metadata["namespace"], pod["metadata"]["name"])
        current = body.get("status") or {}
        return self._write(body, current, finished_status("Succeeded", message, current.get("conditions")))

    def _apply(self, job_body: dict[str, Any], desired: int, pods: list[dict[str, Any]],
               job_plan: JobPlan | None) -> bool:
        """Create missing workers, ask surplus ones to checkpoint, remove them after the notice."""
        metadata = job_body["metadata"]
        namespace = metadata["namespace"]
        changed = False
        if desired > 0:
            self._ensure_service(job_body)
        workers = plan_workers(desired, pods)
        channel = self.channel
        if workers.create and channel is not None:
            with refused_as("the progress Secret"):
                channel.ensure_job_secret(job_body)
        extra_env = channel.worker_env(metadata["name"]) if channel is not None else []
        planned = planned_nodes(desired, pods, job_plan.nodes) if job_plan is not None else {}
        for pod in pods:  # a worker still waiting for a node follows the latest round's plan
            index = worker_index(pod)
            node = planned.get(index) if index is not None else None
            annotations = pod["metadata"].get("annotations") or {}
            if node and index not in workers.create and annotations.get(contracts.ANNOTATION_PLANNED_NODE) != node:
                self.writer.annotate_pod(namespace, pod["metadata"]["name"], {contracts.ANNOTATION_PLANNED_NODE: node})
        created: list[int] = []
        try:
            for index in workers.create:
                pod = worker_pod(job_body, index, job_plan, extra_env=extra_env, planned_node=planned.get(index))
                with refused_as(f"worker {index}"):
                    if self.writer.create(Kind.POD, namespace, pod):
                        created.append(index)
                        SCALE_EVENTS.labels("up").inc()
        finally:  # one decision, one event: "created workers 0, 1"
            if created:
                self.recorder.record(job_body, "CreatedWorker",
                                     f"created worker{'s' if len(created) > 1 else ''} "
                                     f"{', '.join(map(str, created))}; the round gives it {desired} workers")
                changed = True
        changed |= self._shrink(job_body, desired, pods, workers.delete, job_plan)
        for pod_name in workers.replace:
            changed |= self.writer.delete_pod(namespace, pod_name)
        for pod in pods:  # a worker asked to checkpoint that the round keeps after all: withdraw the request
            name = pod["metadata"]["name"]
            if name not in workers.delete and _checkpoint_requested_at(pod) is not None:
                self.writer.annotate_pod(namespace, name, {contracts.ANNOTATION_CHECKPOINT_REQUESTED: None})
        return changed

    def _ensure_service(self, job_body: dict[str, Any]) -> None:
        """The job's headless Service, created once: known from the cache (or this process's own create)."""
        metadata = job_body["metadata"]
        namespace, uid = metadata["namespace"], str(metadata["uid"])
        existing = self.cache.service(namespace, contracts.headless_service_name(metadata["name"]))
        if uid in self._services_posted or (existing is not None and owned_by(existing, uid)):
            return
        with refused_as("the headless Service"):
            if self.writer.create(Kind.SERVICE, namespace, headless_service(job_body)):
                log.info("%s/%s: created headless service", namespace, metadata["name"])
        self._services_posted.add(uid)

    def _shrink(self, job_body: dict[str, Any], desired: int, pods: list[dict[str, Any]], surplus: tuple[str, ...],
                job_plan: JobPlan | None) -> bool:
        metadata = job_body["metadata"]
        namespace, key = metadata["namespace"], job_key(metadata["namespace"], metadata["name"])
        notice = self.round.checkpoint_notice_seconds
        by_name = {p["metadata"]["name"]: p for p in pods}
        changed = False
        for pod_name in surplus:
            requested = _checkpoint_requested_at(by_name[pod_name])
            if requested is None:
                self.writer.annotate_pod(namespace, pod_name, {contracts.ANNOTATION_CHECKPOINT_REQUESTED:
                                                               _now().isoformat()})
                self.recorder.record(job_body, "CheckpointRequested",
                                     f"asked {pod_name} to checkpoint: the round gives the job {desired} workers"
                                     + (f" ({job_plan.reason})" if job_plan and job_plan.reason else ""))
                self._again_after(key, notice)
                changed = True
            elif (_now() - requested).total_seconds() >= notice and self.writer.delete_pod(namespace, pod_name):
                self.recorder.record(job_body, "DeletedWorker" if desired else "Suspended",
                                     f"removed {pod_name} after its checkpoint notice; {desired} workers remain")
                SCALE_EVENTS.labels("down").inc()
                changed = True
        return changed

    def _again_after(self, key: str, seconds: float) -> None:
        """Mark the job dirty once a checkpoint notice has passed: removal waits for the notice, not a round."""
        timer = threading.Timer(seconds + 0.05, self.cache.mark_dirty, args=(key,))
        timer.daemon = True
        timer.start()
