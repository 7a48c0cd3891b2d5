"""The Kubernetes side of the node daemon: watch the pods bound to this node.

Thin on purpose: list + watch pods with ``spec.nodeName=<node>``, keep the latest object of each,
and hand the full set of shares (shares.shares_from_pod) to a callback after every change. The
only module of the daemon that imports ``kubernetes``. Needs RBAC: get, list, watch on pods.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from .shares import ContainerShare, shares_from_pod

log = logging.getLogger("stretto.gpu_interceptor.kube_watch")


def load_kube_config(kubeconfig: str | None) -> client.ApiClient:
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig)
    else:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
    return client.ApiClient()


def _shares(pods: dict[str, dict[str, Any]]) -> list[ContainerShare]:
    out: list[ContainerShare] = []
    for uid, pod in pods.items():
        try:
            out.extend(shares_from_pod(pod))
        except (ValueError, KeyError) as e:
            log.warning("ignoring pod %s: bad GPU share annotations: %s", uid, e)
    return out


def watch_node_pods(api: client.ApiClient, node: str, on_shares: Callable[[list[ContainerShare]], None],
                    stop: threading.Event, *, timeout_s: int = 60) -> None:
    """List, then watch, the pods of ``node`` until ``stop``; re-lists when the watch expires."""
    v1 = client.CoreV1Api(api)
    selector = f"spec.nodeName={node}"
    while not stop.is_set():
        try:
            listing = v1.list_pod_for_all_namespaces(field_selector=selector)
            pods = {p.metadata.uid: api.sanitize_for_serialization(p) for p in listing.items}
            on_shares(_shares(pods))
            version = listing.metadata.resource_version
            w = watch.Watch()
            for event in w.stream(v1.list_pod_for_all_namespaces, field_selector=selector,
                                  resource_version=version, timeout_seconds=timeout_s):
                if stop.is_set():
                    w.stop()
                    break
                obj = event["object"]
                pod = api.sanitize_for_serialization(obj)
                uid = pod["metadata"]["uid"]
                if event["type"] == "DELETED":
                    pods.pop(uid, None)
                else:
                    pods[uid] = pod
                on_shares(_shares(pods))
        except ApiException as e:
            if e.status != 410:  # 410 Gone: our resource version expired; just re-list
                log.warning("pod watch failed: %s; retrying", e)
                stop.wait(2.0)
        except Exception as e:  # network errors: keep the last shares, retry
            log.warning("pod watch error: %s; retrying", e)
            stop.wait(2.0)
