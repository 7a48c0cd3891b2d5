"""Kubernetes Events on a TrainingJob: the user's answer to "what happened to my job, and why".

Repeats are aggregated as kubectl expects: an event is named after its job's uid, reason, type and
message, so the same decision made again bumps `count`, `lastTimestamp` and `series` of the one
Event (`kubectl describe` shows "x3 over 2m") instead of adding another. The name is deterministic,
so an operator restarted, or a new leader, keeps counting on the same Event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import threading
from collections import defaultdict
from typing import Any

from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.operator import kube
from stretto.operator.metrics import API_WRITES

REPORTING_COMPONENT = "stretto-operator"
log = logging.getLogger(__name__)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_name(job_name: str, uid: str, reason: str, kind: str, message: str) -> str:
    digest = hashlib.sha256("\0".join((uid, reason, kind, message)).encode()).hexdigest()[:16]
    return f"{job_name}.{digest}"


class EventRecorder:
    """Writes a TrainingJob's events, one Event per distinct (reason, type, message), counting repeats."""

    def __init__(self) -> None:
        self.instance = f"{socket.gethostname()}-{os.getpid()}"
        self._counts: dict[tuple[str, str], int] = {}  # (namespace, event name) -> count written
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)

    def record(self, job_body: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
        metadata = job_body["metadata"]
        namespace, kind, message = metadata["namespace"], "Warning" if warning else "Normal", message[:1024]
        name = event_name(metadata["name"], str(metadata["uid"]), reason, kind, message)
        try:
            with self._locks[(namespace, name)]:  # one writer of an Event's count at a time (others go on)
                count = self._counts.get((namespace, name))
                if count is None:
                    count = self._create(job_body, name, reason, kind, message)
                else:
                    try:
                        count = self._bump(namespace, name, count + 1)
                    except ApiException as error:
                        if error.status != 404:
                            raise
                        count = self._create(job_body, name, reason, kind, message)  # expired (the event TTL)
                self._counts[(namespace, name)] = count
        except ApiException as error:  # an event is information; never fail a reconcile over it
            log.warning("could not record event %s on %s: %s", reason, metadata["name"], error.reason)

    def _create(self, job_body: dict[str, Any], name: str, reason: str, kind: str, message: str) -> int:
        metadata = job_body["metadata"]
        now = _now()
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": contracts.API_VERSION, "kind": contracts.TRAININGJOB_KIND,
                "name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"],
            },
            "reason": reason, "message": message, "type": kind, "action": reason,
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT, "reportingInstance": self.instance,
            "firstTimestamp": now, "lastTimestamp": now, "eventTime": now, "count": 1,
        }
        API_WRITES.labels("create", "events").inc()
        try:
            kube.core().create_namespaced_event(metadata["namespace"], event, _preload_content=False)
            return 1
        except ApiException as error:
            if error.status != 409:
                raise
        # Recorded before this process started (a restart, another leader): count on from the stored one.
        stored = kube.core().read_namespaced_event(name, metadata["namespace"])
        return self._bump(metadata["namespace"], name, (stored.count or 1) + 1)

    def _bump(self, namespace: str, name: str, count: int) -> int:
        now = _now()
        API_WRITES.labels("patch", "events").inc()
        kube.core().patch_namespaced_event(name, namespace, {
            "count": count, "lastTimestamp": now, "series": {"count": count, "lastObservedTime": now}},
            _preload_content=False)
        return count
