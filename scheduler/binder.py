"""Annotating and binding a pod: the two API writes of the extender's bind verb.

`PodBinder` is the small interface `extender` depends on; `KubePodBinder` speaks to the API server,
the recording fake in `stretto.scheduler.testing` stands in for it in unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import quote

from .kube_api import KubeAPI, KubeAPIError


class BindError(Exception):
    """An API write failed. `definite`: the server refused it, so it did not take effect."""

    def __init__(self, message: str, *, definite: bool) -> None:
        super().__init__(message)
        self.definite = definite


class PodBinder(Protocol):
    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """The Pod object as JSON; raises BindError."""
        ...

    def annotate_pod(self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        """Merge `annotations` into the pod, only if it still has this uid; raises BindError."""
        ...

    def bind_pod(self, namespace: str, name: str, uid: str, node: str) -> None:
        """POST the pod's Binding to `node`, with the uid as precondition; raises BindError."""
        ...


def binding_body(namespace: str, name: str, uid: str, node: str) -> dict[str, Any]:
    # metadata.uid becomes a storage precondition: a same-named replacement pod is never bound.
    return {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    }


def annotation_patch(uid: str, annotations: Mapping[str, str]) -> dict[str, Any]:
    # A merge patch carrying metadata.uid is refused (conflict/invalid) by a pod with another uid.
    return {"metadata": {"uid": uid, "annotations": dict(annotations)}}


class KubePodBinder:
    def __init__(self, api: KubeAPI) -> None:
        self._api = api

    @staticmethod
    def _pod_path(namespace: str, name: str) -> str:
        return f"/api/v1/namespaces/{quote(namespace, safe='')}/pods/{quote(name, safe='')}"

    @staticmethod
    def _error(action: str, exc: KubeAPIError) -> BindError:
        return BindError(f"{action}: {exc}", definite=exc.definite)

    def read_pod(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            return self._api.request("GET", self._pod_path(namespace, name))
        except KubeAPIError as exc:
            raise self._error(f"reading pod {namespace}/{name}", exc) from exc

    def annotate_pod(self, namespace: str, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        try:
            self._api.request(
                "PATCH", self._pod_path(namespace, name), body=annotation_patch(uid, annotations),
                content_type="application/merge-patch+json",
            )
        except KubeAPIError as exc:
            raise self._error(f"annotating pod {namespace}/{name}", exc) from exc

    def bind_pod(self, namespace: str, name: str, uid: str, node: str) -> None:
        try:
            self._api.request(
                "POST", self._pod_path(namespace, name) + "/binding",
                body=binding_body(namespace, name, uid, node),
            )
        except KubeAPIError as exc:
            raise self._error(f"binding pod {namespace}/{name} to {node}", exc) from exc
