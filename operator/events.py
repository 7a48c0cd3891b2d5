"""Kubernetes Events on a TrainingJob: the user's answer to "what happened to my job, and why"."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.operator import kube

REPORTING_COMPONENT = "stretto-operator"
log = logging.getLogger(__name__)


def record(job_body: dict[str, Any], reason: str, message: str, warning: bool = False) -> None:
    metadata = job_body["metadata"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{metadata['name']}.{uuid.uuid4().hex[:12]}", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": contracts.API_VERSION, "kind": contracts.TRAININGJOB_KIND,
            "name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"],
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": REPORTING_COMPONENT},
        "reportingComponent": REPORTING_COMPONENT,
        "reportingInstance": REPORTING_COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": now,
        "action": reason,
        "count": 1,
    }
    try:
        kube.core().create_namespaced_event(metadata["namespace"], event)
    except ApiException as error:  # an event is information; never fail a reconcile over it
        log.warning("could not record event %s on %s: %s", reason, metadata["name"], error.reason)
