"""The round plans around what other pods hold on a node (a node daemon, an exporter, the chart's own pods).

kube-scheduler counts every pod's requests on its node (NodeResourcesFit); a plan that gave the
workers room another pod holds would leave them Pending for good.
"""

from __future__ import annotations

from kubernetes import client

from stretto.api.quantity import parse_quantity
from tests.integration.harness import wait_for
from tests.integration.test_walking_skeleton import create_job, running_workers, training_job

NODE_CPUS = 96  # stretto.devcluster.fake_nodes.NodeShape


def test_workers_fit_beside_a_pod_stretto_does_not_manage(core: client.CoreV1Api, custom, namespace):
    create_job(custom, namespace, training_job("holder", min_workers=2, gpus=8))  # two whole nodes
    holders = wait_for(lambda: running_workers(core, namespace, "holder", 2), 180, "2 workers of the holder")
    nodes = {n.metadata.name for n in core.list_node().items}
    [free] = nodes - {p.spec.node_name for p in holders}
    neighbour = {"metadata": {"name": "neighbour", "labels": {"app.kubernetes.io/managed-by": "Helm"}},
                 "spec": {"nodeName": free, "containers": [{
                     "name": "exporter", "image": "example.com/exporter:1",
                     "resources": {"requests": {"cpu": f"{NODE_CPUS - 6}", "memory": "700Gi"}}}]}}
    core.create_namespaced_pod(namespace, neighbour)
    wait_for(lambda: core.read_namespaced_pod("neighbour", namespace).status.phase == "Running", 60,
             "the neighbour pod Running on the free node")

    create_job(custom, namespace, training_job("squeezed", min_workers=8))
    workers = wait_for(lambda: running_workers(core, namespace, "squeezed", 8), 120,
                       "the 8 workers in the room the neighbour leaves")
    assert {p.spec.node_name for p in workers} == {free}
    cpus = sum(float(parse_quantity(p.spec.containers[0].resources.requests["cpu"])) for p in workers)
    assert cpus <= 6 + 1e-9, cpus
