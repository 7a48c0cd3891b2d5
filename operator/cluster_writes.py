"""Every write the reconciler makes, with the API's answer put straight into the cluster cache.

Writing through keeps the cache ahead of the watch: the next pass sees its own pod, Service or
status at once and does not write it again; the watch event of the same resourceVersion that
follows is then a no-op. Each write is counted (`stretto_operator_api_writes_total`) so a platform
team can see that a steady round writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.operator import kube
from stretto.operator.cluster_cache import ClusterCache, Kind
from stretto.operator.metrics import API_WRITES

RAW = {"_preload_content": False}


def _body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.data))


class ClusterWriter:
    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache

    def create(self, kind: Kind, namespace: str, body: dict[str, Any]) -> bool:
        """Create a pod or Service; False when it exists already (409)."""
        API_WRITES.labels("create", kind.value).inc()
        try:
            if kind is Kind.POD:
                response = kube.core().create_namespaced_pod(namespace, body, **RAW)
            else:
                response = kube.core().create_namespaced_service(namespace, body, **RAW)
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        self.cache.store(kind, _body(response))
        return True

    def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a worker (its grace period applies); False when it was gone already."""
        API_WRITES.labels("delete", Kind.POD.value).inc()
        try:
            response = kube.core().delete_namespaced_pod(name, namespace, **RAW)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        answer = _body(response)
        if answer.get("kind") == "Pod":  # terminating: the pod, with its deletionTimestamp
            self.cache.store(Kind.POD, answer)
        return True

    def annotate_pod(self, namespace: str, name: str, annotations: dict[str, str | None]) -> None:
        API_WRITES.labels("patch", Kind.POD.value).inc()
        try:
            response = kube.core().patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}},
                                                        **RAW)
        except ApiException as error:
            if error.status != 404:
                raise
            return
        self.cache.store(Kind.POD, _body(response))

    def patch_status(self, namespace: str, name: str, uid: str, status: dict[str, Any]) -> None:
        """A merge patch of the job's status; the uid makes it refuse a re-created namesake."""
        API_WRITES.labels("patch", "trainingjobs/status").inc()
        try:
            answer = kube.custom().patch_namespaced_custom_object_status(
                contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name,
                {"metadata": {"uid": uid}, "status": status})
        except ApiException as error:
            if error.status not in (404, 409):  # deleted (or re-created) meanwhile: nothing to report on
                raise
            return
        self.cache.store(Kind.JOB, dict(answer))
