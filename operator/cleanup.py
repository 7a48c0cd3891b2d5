"""`stretto cleanup`: what `helm uninstall` leaves behind, removed (the chart's opt-in pre-delete hook).

Helm never deletes a chart's CRDs, so without this every TrainingJob, its worker pods, headless
Service and token Secret outlive the operator. This deletes every TrainingJob in the cluster, waits
until their workers are gone (garbage collection of their ownerReferences), then deletes what
Stretto's components created in the release namespace at run time: the operator's key Secret and
the operator's and kube-scheduler's Leases. The CRD itself stays, as Helm's convention has it.
"""

from __future__ import annotations

import argparse
import logging
import time

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.operator.progress_tokens import OPERATOR_KEY_SECRET

log = logging.getLogger(__name__)

LEASES = ("stretto-operator", "stretto-scheduler")  # the operator's (--leader-election) and kube-scheduler's


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("cleanup", help="delete every TrainingJob and Stretto's run-time objects "
                                                   "(before helm uninstall)")
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)")
    parser.add_argument("--namespace", default="stretto-system", help="Stretto's release namespace")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the workers to go")
    parser.set_defaults(func=run)


def _api_client(kubeconfig: str | None) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except config.ConfigException:
        if kubeconfig:
            raise
        config.load_incluster_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def _ignore_missing(error: ApiException) -> None:
    if error.status != 404:
        raise error


def delete_training_jobs(custom: client.CustomObjectsApi) -> int:
    jobs = custom.list_cluster_custom_object(contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL)
    for job in jobs["items"]:
        metadata = job["metadata"]
        try:
            custom.delete_namespaced_custom_object(contracts.GROUP, contracts.VERSION, metadata["namespace"],
                                                   contracts.TRAININGJOB_PLURAL, metadata["name"],
                                                   body={"propagationPolicy": "Background"})
        except ApiException as error:
            _ignore_missing(error)
    return len(jobs["items"])


def remaining_workers(core: client.CoreV1Api) -> int:
    selector = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"
    return len(core.list_pod_for_all_namespaces(label_selector=selector).items)


def delete_runtime_objects(core: client.CoreV1Api, coordination: client.CoordinationV1Api, namespace: str) -> None:
    try:
        core.delete_namespaced_secret(OPERATOR_KEY_SECRET, namespace)
    except ApiException as error:
        _ignore_missing(error)
    for lease in LEASES:
        try:
            coordination.delete_namespaced_lease(lease, namespace)
        except ApiException as error:
            _ignore_missing(error)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = _api_client(args.kubeconfig)
    core = client.CoreV1Api(api)
    deleted = delete_training_jobs(client.CustomObjectsApi(api))
    log.info("deleted %d TrainingJob(s); waiting for their workers to go", deleted)
    deadline = time.monotonic() + args.timeout
    while (left := remaining_workers(core)) and time.monotonic() < deadline:
        time.sleep(1.0)
    if left:
        log.error("%d worker pod(s) still present after %.0f s", left, args.timeout)
        return 1
    delete_runtime_objects(core, client.CoordinationV1Api(api), args.namespace)
    log.info("removed Secret %s/%s and Leases %s", args.namespace, OPERATOR_KEY_SECRET, ", ".join(LEASES))
    return 0
