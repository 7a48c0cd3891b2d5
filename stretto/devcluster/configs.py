"""The configuration files the dev cluster's processes read: kubeconfig, scheduler, kwok."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from stretto import contracts
from stretto.devcluster.pki import Pki

EXTENDER_URL_PATH = ""  # the extender serves /filter and /bind at its root


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig(pki: Pki, api_port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stretto-dev", "cluster": {
            "server": f"https://127.0.0.1:{api_port}",
            "certificate-authority-data": _b64(pki.serving_ca),
        }}],
        "users": [{"name": "stretto-admin", "user": {
            "client-certificate-data": _b64(pki.admin_cert),
            "client-key-data": _b64(pki.admin_key),
        }}],
        "contexts": [{"name": "stretto-dev", "context": {"cluster": "stretto-dev", "user": "stretto-admin"}}],
        "current-context": "stretto-dev",
    }


def scheduler_configuration(kubeconfig_path: Path, extender_port: int, *, stretto_profile: bool = True
                            ) -> dict[str, Any]:
    """kube-scheduler with the `stretto-scheduler` profile calling Stretto's extender.

    The extender filters, scores and binds every pod that asks for whole GPUs or a GPU share. The
    default profile stays, so ordinary pods in the dev cluster still schedule. Without
    `stretto_profile` only the default profile is served (the Helm chart runs Stretto's).
    """
    configuration: dict[str, Any] = {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig_path), "qps": 200, "burst": 400},
        "leaderElection": {"leaderElect": False},
        # A worker planned onto GPUs that a shrinking job still holds fails until those pods are gone;
        # retry it within a second of that, not after an exponential backoff (Stretto's round paces it).
        "podInitialBackoffSeconds": 1,
        "podMaxBackoffSeconds": 1,
        "percentageOfNodesToScore": 100,
        "profiles": [{"schedulerName": contracts.SCHEDULER_NAME}, {"schedulerName": "default-scheduler"}],
        "extenders": [{
            "urlPrefix": f"http://127.0.0.1:{extender_port}{EXTENDER_URL_PATH}",
            "filterVerb": "filter",
            "bindVerb": "bind",
            "enableHTTPS": False,
            "httpTimeout": "10s",
            "nodeCacheCapable": True,
            "ignorable": False,
            "managedResources": [
                {"name": contracts.GPU_RESOURCE, "ignoredByScheduler": False},
                {"name": contracts.GPU_SHARE_RESOURCE, "ignoredByScheduler": True},
            ],
        }],
    }
    if not stretto_profile:
        configuration["profiles"] = [{"schedulerName": "default-scheduler"}]
        del configuration["extenders"]
    return configuration


def kwok_configuration(stages_yaml: str) -> str:
    """kwok's own options followed by its default Stage documents (node and pod lifecycles)."""
    options = {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokConfiguration",
        "options": {
            "manageAllNodes": False,
            "manageNodesWithAnnotationSelector": "kwok.x-k8s.io/node=fake",
            "cidr": "10.244.0.0/16",
            "nodeLeaseDurationSeconds": 40,
            # kwok applies these defaults only to flags, not to a configuration file.
            "nodeLeaseParallelism": 4,
            "podPlayStageParallelism": 4,
            "nodePlayStageParallelism": 4,
            "podsOnNodeSyncParallelism": 1,
        },
    }
    stages = [d for d in yaml.safe_load_all(stages_yaml) if d and d.get("kind") == "Stage"]
    return yaml.safe_dump_all([options, *stages], sort_keys=False)


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
