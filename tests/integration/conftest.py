"""The real control plane the integration tests run against.

By default a local one: `stretto.devcluster` builds (first time only) and starts etcd,
kube-apiserver, kube-controller-manager, kube-scheduler with Stretto's extender, and kwok with fake
GPU nodes, then starts Stretto's extender and operator as local processes. Set
STRETTO_TEST_KUBECONFIG (or KUBECONFIG) to run the same tests against another cluster that already
runs Stretto's scheduler and extender (e.g. kind with `kind-config.yaml` and the Helm chart); the
operator is still started locally so the restart tests can kill it. Nothing here is mocked.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.integration.harness import Harness, wait_for

NODES = 3
GPUS_PER_NODE = 8


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    external = os.environ.get("STRETTO_TEST_KUBECONFIG") or os.environ.get("KUBECONFIG")
    if external:
        h = Harness.external(Path(external), tmp_path_factory.mktemp("stretto-external"))
    else:
        h = Harness.local(tmp_path_factory.mktemp("stretto-dev-cluster"), NODES, GPUS_PER_NODE)
    try:
        h.start_stretto()
        yield h
    finally:
        h.close()


@pytest.fixture(scope="session")
def api(harness: Harness) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(harness.kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def custom(api: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test; deleting it at the end frees the test's GPUs for the next."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)
    wait_for(lambda: not core.list_namespaced_pod(name).items, timeout=60,
             what=f"pods of namespace {name} to be deleted")
