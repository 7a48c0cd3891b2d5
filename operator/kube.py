"""The operator's Kubernetes API clients, configured once from KUBECONFIG or the in-cluster account."""

from __future__ import annotations

import functools
import os

from kubernetes import client, config


@functools.cache
def api_client() -> client.ApiClient:
    kubeconfig = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if os.path.exists(kubeconfig):  # read the variable now: the client library reads it only at import
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    configuration.retries = 3
    configuration.connection_pool_maxsize = 24  # the round applies jobs in parallel (16 threads)
    return client.ApiClient(configuration)


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def coordination() -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api_client())
