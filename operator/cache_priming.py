"""Fill the cluster cache with one list per kind: at start-up, and when a replica starts leading.

Raw JSON (`_preload_content=False`): the client's models would be built and thrown away again, and
turning 2,000 pods into models and back costs more than a second.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stretto import contracts
from stretto.operator import kube
from stretto.operator.cluster_cache import ClusterCache, Kind
from stretto.operator.node_reservations import reservation

MANAGED = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"
OTHERS = f"{contracts.LABEL_MANAGED_BY}!={contracts.MANAGED_BY}"  # also the pods without the label


def _listed(response: Any) -> tuple[list[dict[str, Any]], int | None]:
    document = json.loads(response.data)
    version = (document.get("metadata") or {}).get("resourceVersion")
    return list(document.get("items") or []), int(version) if str(version).isdigit() else None


def _lists(namespaces: list[str]) -> dict[Kind, list[Callable[[], Any]]]:
    core, custom = kube.core(), kube.custom()
    raw = {"_preload_content": False}
    crd = (contracts.GROUP, contracts.VERSION)
    if not namespaces:
        return {
            Kind.JOB: [lambda: custom.list_cluster_custom_object(*crd, contracts.TRAININGJOB_PLURAL, **raw)],
            Kind.POD: [lambda: core.list_pod_for_all_namespaces(label_selector=MANAGED, **raw)],
            Kind.SERVICE: [lambda: core.list_service_for_all_namespaces(label_selector=MANAGED, **raw)],
            Kind.NODE: [lambda: core.list_node(**raw)],
            Kind.OTHER_POD: [lambda: core.list_pod_for_all_namespaces(label_selector=OTHERS, **raw)],
        }
    return {
        Kind.JOB: [lambda ns=ns: custom.list_namespaced_custom_object(*crd, ns, contracts.TRAININGJOB_PLURAL, **raw)
                   for ns in namespaces],
        Kind.POD: [lambda ns=ns: core.list_namespaced_pod(ns, label_selector=MANAGED, **raw) for ns in namespaces],
        Kind.SERVICE: [lambda ns=ns: core.list_namespaced_service(ns, label_selector=MANAGED, **raw)
                       for ns in namespaces],
        Kind.NODE: [lambda: core.list_node(**raw)],
        Kind.OTHER_POD: [lambda ns=ns: core.list_namespaced_pod(ns, label_selector=OTHERS, **raw) for ns in namespaces],
    }


def prime(cache: ClusterCache, namespaces: list[str] | None = None) -> None:
    """List every kind the cache holds (all namespaces, or only `namespaces`) and bring the cache to it."""
    for kind, calls in _lists(namespaces or []).items():
        items: list[dict[str, Any]] = []
        versions: list[int | None] = []
        for call in calls:
            listed, version = _listed(call())
            if kind is Kind.OTHER_POD:
                listed = [kept for kept in map(reservation, listed) if kept is not None]
            items += listed
            versions.append(version)
        known = [v for v in versions if v is not None]
        cache.replace_all(kind, items, min(known) if len(known) == len(versions) and known else None)
    cache.primed = True
