"""A TrainingJob's status, derived from its worker pods so the user's own object says what happens.

"Why is my job pending?" is answered on the TrainingJob itself: the Scheduled condition carries the
scheduler's last message for the first unscheduled worker (the same text as its FailedScheduling
event), and `status.message` repeats it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from stretto.operator.reconcile import worker_index


@dataclass(frozen=True)
class Refusal:
    """The API server refused part of the job's plan: what, and the API's own reason and message."""

    what: str      # "worker 0", "the headless Service", ...
    reason: str    # the API's StatusReason: Forbidden, Invalid, ...
    message: str
    by: str = "the API server"

    @property
    def summary(self) -> str:
        return f"{self.by} refused {self.what}: {self.message}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pod_condition(pod: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in pod.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def _condition(kind: str, ok: bool, reason: str, message: str,
               previous: dict[str, dict[str, Any]]) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind)
    changed = old is None or old.get("status") != status
    return {
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": _now() if changed else old.get("lastTransitionTime", _now()),
    }


PLANNED_FIELDS = ("plannedWorkers", "plannedGpus", "cpuPerWorker", "memoryPerWorker")


def finished_status(phase: str, message: str, previous_conditions: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The status patch of a job that is done (`Succeeded`, or `Failed` for good): it holds and is planned
    nothing, is not suspended, and its conditions say so, each with the time it changed."""
    previous = {c["type"]: c for c in previous_conditions or [] if "type" in c}
    succeeded = phase == "Succeeded"
    accepted = previous.get("WorkersAccepted") or {}
    conditions = [
        _condition("Scheduled", False, "Finished", "the job is finished; it holds no workers", previous),
        _condition("Running", False, "Finished", "0 workers: the job is finished", previous),
        _condition("Scaling", False, "Stable", "", previous),
        _condition("Suspended", False, "NotSuspended", "", previous),
        _condition("Succeeded", succeeded, "WorkDone" if succeeded else "NotFinished",
                   message if succeeded else "", previous),
        _condition("Failed", not succeeded, "WorkerFailed" if not succeeded else "NoFailure",
                   "" if succeeded else message, previous),
        _condition("WorkersAccepted", accepted.get("status", "True") == "True", accepted.get("reason", "Accepted"),
                   accepted.get("message", "the API server accepted the round's plan"), previous),
    ]
    allocation: dict[str, Any] = {"gpus": 0, "workers": 0, "nodes": []}
    allocation |= dict.fromkeys(PLANNED_FIELDS)  # None: the merge patch removes the planned allocation
    return {"phase": phase, "message": message, "workers": 0, "readyWorkers": 0, "allocation": allocation,
            "conditions": conditions, "prediction": None}


def derive_status(desired: int, pods: list[dict[str, Any]], gpus_per_worker: int,
                  previous_conditions: list[dict[str, Any]] | None = None,
                  waiting_reason: str = "", refusal: Refusal | None = None) -> dict[str, Any]:
    """The `status` patch for a job that should run `desired` workers and has `pods`.

    `waiting_reason` is the round's word on why the job runs no or fewer workers than it could;
    `refusal`, what the API server refused while applying the round's plan (the job waits on it).
    """
    workers = sorted((p for p in pods if worker_index(p) is not None and
                      p.get("metadata", {}).get("deletionTimestamp") is None),
                     key=lambda p: worker_index(p) or 0)
    phases = [p.get("status", {}).get("phase", "Pending") for p in workers]
    bound = [p for p in workers if p.get("spec", {}).get("nodeName")]
    ready = [p for p in workers if (_pod_condition(p, "Ready") or {}).get("status") == "True"]
    previous = {c["type"]: c for c in previous_conditions or [] if "type" in c}

    unscheduled_message = ""
    for pod in workers:
        scheduled = _pod_condition(pod, "PodScheduled")
        if not pod.get("spec", {}).get("nodeName") and scheduled and scheduled.get("status") == "False":
            unscheduled_message = f"{pod['metadata']['name']}: {scheduled.get('message') or scheduled.get('reason')}"
            break

    had_run = any(previous.get(kind, {}).get("status") == "True" for kind in ("Running", "Suspended", "Scaling"))
    if workers and all(phase == "Succeeded" for phase in phases) and len(workers) >= desired:
        phase, message = "Succeeded", "all workers finished"
    elif desired == 0 and not workers:
        phase = "Suspended" if had_run else "Pending"
        message = waiting_reason or "waiting for GPUs"
    elif any(phase == "Failed" for phase in phases):
        failed = next(p["metadata"]["name"] for p, ph in zip(workers, phases, strict=True) if ph == "Failed")
        phase, message = "Failed", f"worker {failed} failed"
    elif len(ready) >= desired > 0 and len(workers) == desired:
        phase, message = "Running", f"{len(ready)} of {desired} workers running"
        if waiting_reason:
            message += f"; {waiting_reason}"
    elif len(ready) > 0 and len(workers) != desired:
        phase, message = "Scaling", f"scaling from {len(workers)} to {desired} workers"
    else:
        phase = "Pending"
        message = unscheduled_message or f"{len(bound)} of {desired} workers scheduled, {len(ready)} running"
    if refusal is not None:
        message = refusal.summary if phase == "Pending" else f"{message}; {refusal.summary}"

    all_bound = len(bound) >= desired > 0
    if not unscheduled_message and desired == 0:
        unscheduled_message = waiting_reason
    conditions = [
        _condition("Scheduled", all_bound, "AllWorkersBound" if all_bound else "Unschedulable"
                   if unscheduled_message else "Waiting",
                   f"{len(bound)} of {desired} workers bound" if all_bound or not unscheduled_message
                   else unscheduled_message, previous),
        _condition("Running", phase == "Running", "WorkersReady" if phase == "Running" else "NotReady",
                   f"{len(ready)} of {desired} workers ready", previous),
        _condition("Scaling", phase == "Scaling", "Resizing" if phase == "Scaling" else "Stable",
                   message if phase == "Scaling" else "", previous),
        _condition("Suspended", phase == "Suspended", "NoGpusThisRound" if phase == "Suspended" else "NotSuspended",
                   message if phase == "Suspended" else "", previous),
        _condition("Succeeded", phase == "Succeeded", "Finished" if phase == "Succeeded" else "NotFinished",
                   message if phase == "Succeeded" else "", previous),
        _condition("Failed", phase == "Failed", "WorkerFailed" if phase == "Failed" else "NoFailure",
                   message if phase == "Failed" else "", previous),
        _condition("WorkersAccepted", refusal is None, refusal.reason if refusal else "Accepted",
                   refusal.summary if refusal else "the API server accepted the round's plan", previous),
    ]
    nodes = sorted({p["spec"]["nodeName"] for p in bound})
    return {
        "phase": phase,
        "workers": len(workers),
        "readyWorkers": len(ready),
        "allocation": {"gpus": len(bound) * gpus_per_worker, "workers": len(bound), "nodes": nodes},
        "message": message,
        "conditions": conditions,
    }
