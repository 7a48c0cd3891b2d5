"""Binding a pod: the one API write of the extender's bind verb.

The Binding carries the pod's GPU annotations (the API server copies a Binding's annotations onto the
pod as it sets `spec.nodeName`), so the devices and the node land in one write and the node never
sees the pod without them. `PodBinder` is the small interface `extender` depends on; `KubePodBinder`
speaks to the API server, the recording fake in `stretto.scheduler.testing` stands in for it in tests.
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

    def bind_pod(self, namespace: str, name: str, uid: str, node: str, annotations: Mapping[str, str]) -> None:
        """POST the pod's Binding to `node` with `annotations`, the uid as precondition; raises BindError."""
        ...


def binding_body(namespace: str, name: str, uid: str, node: str,
                 annotations: Mapping[str, str] | None = None) -> dict[str, Any]:
    # metadata.uid becomes a storage precondition: a same-named replacement pod is never bound.
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"apiVersion": "v1", "kind": "Binding", "metadata": metadata,
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


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

    def bind_pod(self, namespace: str, name: str, uid: str, node: str, annotations: Mapping[str, str]) -> None:
        try:
            self._api.request(
                "POST", self._pod_path(namespace, name) + "/binding",
                body=binding_body(namespace, name, uid, node, annotations),
            )
        except KubeAPIError as exc:
            raise self._error(f"binding pod {namespace}/{name} to {node}", exc) from exc
