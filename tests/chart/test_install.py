"""`helm install`, `upgrade` and `uninstall` of the chart on a plain local control plane (Node,RBAC,
PodSecurity, OwnerReferencesPermissionEnforcement), with every component run as its ServiceAccount.

The tests run in order on one module-scoped cluster: each step starts from what the one before left.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.devcluster import processes
from stretto.devcluster.binaries import build_binaries
from stretto.devcluster.cluster import DevCluster
from stretto.sdk.environment import progress_secret_name
from tests.chart.chart_tools import CHART, NAMESPACE, RELEASE, Tools, pod_spec
from tests.chart.installed_release import Release, refusals
from tests.integration.harness import wait_for

DAEMON_NAMESPACE = "stretto-node"
RESTRICTED = {"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted"}
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}


def _log(message: str) -> None:
    print(f"[chart install] {message}", file=sys.stderr)


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    """A plain cluster: no CRD, no stretto-system, kube-scheduler without Stretto's profile."""
    run_dir = tmp_path_factory.mktemp("chart-cluster")
    cluster = DevCluster(run_dir / "cluster")
    state = cluster.up(nodes=2, gpus_per_node=8, with_stretto=False, progress=_log)
    work = run_dir / "release"
    work.mkdir()
    installed = Release(cluster=cluster, state=state, binaries=build_binaries(_log), work_dir=work)
    try:
        yield installed
    finally:
        installed.stop_all()
        cluster.down(progress=_log)


@pytest.fixture(scope="module")
def core(release: Release) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(str(release.admin_kubeconfig)))


@pytest.fixture(scope="module")
def custom(release: Release) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(config.new_client_from_config(str(release.admin_kubeconfig)))


@pytest.fixture(scope="module")
def extender_port() -> int:
    return processes.free_port()


def helm(tools: Tools, release: Release, *args: str) -> str:
    return tools.run("helm", *args, kubeconfig=release.admin_kubeconfig).stdout


def kubectl(tools: Tools, release: Release, *args: str, stdin: str | None = None) -> tuple[str, str]:
    result = tools.run("kubectl", *args, kubeconfig=release.admin_kubeconfig, stdin=stdin)
    return result.stdout, result.stderr


def manifest(tools: Tools, release: Release, kind: str, name: str, namespace: str = NAMESPACE) -> dict[str, Any]:
    out, _ = kubectl(tools, release, "get", kind, name, "-n", namespace, "-o", "json")
    return dict(json.loads(out))


def training_job(name: str, workers: int, max_workers: int | None = None) -> dict[str, Any]:
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"workers": {"min": workers, "max": max_workers or workers}, "gpusPerWorker": 1,
                     "work": {"epochs": 100, "samplesPerEpoch": 1000000},
                     "adaptation": {"mode": "none", "batchSizes": [64]},
                     "template": {"spec": {"containers": [{"name": "trainer", "image": "example.com/trainer:1"}]}}}}


def bound_workers(core: client.CoreV1Api, namespace: str, job: str, expected: int) -> list[client.V1Pod]:
    pods = core.list_namespaced_pod(namespace, label_selector=f"{contracts.LABEL_JOB}={job}").items
    done = [p for p in pods if p.status.phase == "Running" and p.spec.node_name
            and contracts.ANNOTATION_GPU_IDS in (p.metadata.annotations or {})]
    return done if len(done) == expected else []


def pods_of(core: client.CoreV1Api, namespace: str, component: str, *, terminating: bool = False
            ) -> list[client.V1Pod]:
    selector = f"app.kubernetes.io/component={component},app.kubernetes.io/instance={RELEASE}"
    return [p for p in core.list_namespaced_pod(namespace, label_selector=selector).items
            if terminating or p.metadata.deletion_timestamp is None]


def diagnosis(release: Release, core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str,
              job: str) -> str:
    """What a failed wait needs to be understood: the job's status, its pods, the namespace's events and
    the tail of every component's log."""
    status = custom.get_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                                 contracts.TRAININGJOB_PLURAL, job).get("status")
    pods = [(p.metadata.name, p.status.phase, p.spec.node_name, [(c.type, c.status, c.message)
                                                                 for c in p.status.conditions or []])
            for p in core.list_namespaced_pod(namespace).items]
    events = [(e.reason, e.message) for e in core.list_namespaced_event(namespace).items]
    logs = "\n".join(f"--- {name} ---\n{release.log(name)[-3000:]}" for name in release.records)
    return f"status: {status}\npods: {pods}\nevents: {events}\n{logs}"


def assert_no_refusals(release: Release) -> None:
    found = release.refusals_by_component()
    assert not found, "403s in the components' logs:\n" + "\n".join(
        f"{name}: {line}" for name, lines in found.items() for line in lines[:5])


def test_rendered_chart_passes_a_strict_server_side_dry_run(tools: Tools, release: Release):
    """Every object of the chart, defaults and a realistic matrix, as the API server would take it."""
    kubectl(tools, release, "create", "namespace", NAMESPACE)
    kubectl(tools, release, "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/warn=restricted")
    kubectl(tools, release, "create", "namespace", DAEMON_NAMESPACE)
    crd = (CHART / "crds" / "trainingjobs.yaml").read_text()
    kubectl(tools, release, "apply", "--server-side", "--dry-run=server", "--validate=strict", "-f", "-", stdin=crd)
    # values -> PodSecurity `restricted` warnings expected in stretto-system (the node daemon's, when it is there)
    matrix = {(): 1, ("nodeDaemon.namespace=stretto-node", "operator.replicas=2"): 0,
              ("cleanup.deleteTrainingJobsOnUninstall=true", "nodeDaemon.enabled=false"): 0,
              ("networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.monitoring=enabled",
               "nodeDaemon.mockNvml=true"): 1}
    for values, daemon_warnings in matrix.items():
        rendered = tools.template(*values).stdout
        out, err = kubectl(tools, release, "apply", "--server-side", "--dry-run=server", "--validate=strict",
                           "-f", "-", stdin=rendered)
        count = sum(1 for d in yaml.safe_load_all(rendered) if d)
        assert out.count("serverside-applied (server dry run)") == count, (values, out, err)
        warnings = [line for line in err.splitlines() if "Warning" in line]
        assert len(warnings) == daemon_warnings, (values, err)
        assert all("hostPID=true" in line for line in warnings), (values, err)
    kubectl(tools, release, "delete", "namespace", NAMESPACE, DAEMON_NAMESPACE, "--wait=true")


def test_helm_install_of_the_readmes_command_on_a_fresh_cluster(tools: Tools, release: Release,
                                                                 core: client.CoreV1Api, extender_port: int):
    helm(tools, release, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
         "--set", f"scheduler.extenderPort={extender_port}",  # a free port: the extender runs on this machine
         "--set", "operator.config.roundSeconds=2", "--set", "operator.config.checkpointNoticeSeconds=1")
    for component in ("operator", "scheduler", "node-daemon"):
        wait_for(lambda c=component: [p for p in pods_of(core, NAMESPACE, c) if p.status.phase == "Running"],
                 90, f"the release's {component} pod to run (on a kwok node)")
    daemon_pods = pods_of(core, NAMESPACE, "node-daemon")
    wait_for(lambda: len(pods_of(core, NAMESPACE, "node-daemon")) == len(release.state.nodes), 60,
             "a node-daemon pod per node")
    assert daemon_pods


def test_components_as_their_service_accounts_bind_workers_through_the_extender(
        tools: Tools, release: Release, core: client.CoreV1Api, custom: client.CustomObjectsApi,
        extender_port: int):
    scheduler_config = manifest(tools, release, "configmap", "stretto-scheduler-config")["data"]["config.yaml"]
    release.start_extender(extender_port)
    release.start_kube_scheduler(scheduler_config)
    release.start_operator(manifest(tools, release, "deployment", "stretto-operator"))
    release.start_node_daemon(NAMESPACE, release.state.nodes[0])
    acquired = f'Successfully acquired lease" lock="{NAMESPACE}/stretto-scheduler"'
    wait_for(lambda: acquired in release.log("kube-scheduler"), 60, "kube-scheduler to take its Lease")

    namespace = f"team-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    custom.create_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                           contracts.TRAININGJOB_PLURAL, training_job("resnet", 3))
    pods = wait_for(lambda: bound_workers(core, namespace, "resnet", 3), 120,
                    "3 workers bound by the chart's kube-scheduler through the extender")
    assert all(p.spec.scheduler_name == contracts.SCHEDULER_NAME for p in pods)
    assert sorted(len(contracts.parse_gpu_ids(p.metadata.annotations[contracts.ANNOTATION_GPU_IDS]))
                  for p in pods) == [1, 1, 1]
    for pod in pods:  # blockOwnerDeletion passed OwnerReferencesPermissionEnforcement
        assert pod.metadata.owner_references[0].block_owner_deletion is True
    secret = core.read_namespaced_secret(progress_secret_name("resnet"), namespace)
    assert secret.data
    for name in ("kube-scheduler", "extender", "operator", "node-daemon"):
        assert release.alive(name), f"{name} exited:\n{release.log(name)[-3000:]}"
    assert_no_refusals(release)


def test_a_job_shrinks_through_a_checkpoint_notice(release: Release, core: client.CoreV1Api,
                                                   custom: client.CustomObjectsApi):
    """The operator's writes beyond creation: a worker asked to checkpoint (annotated), then deleted.

    The round plans around the node daemon's and the release's own pods (their CPU and memory), so
    the job may take a whole node's GPUs beside them."""
    namespace = f"team-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    args = (contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL)
    custom.create_namespaced_custom_object(*args, training_job("grow", 1, 5))
    wait_for(lambda: bound_workers(core, namespace, "grow", 5), 120, "the elastic job grown to 5 workers")
    custom.patch_namespaced_custom_object(*args, "grow", {"spec": {"workers": {"max": 2}}})
    def asked_to_checkpoint() -> list[str]:
        return [p.metadata.name for p in core.list_namespaced_pod(namespace).items
                if contracts.ANNOTATION_CHECKPOINT_REQUESTED in (p.metadata.annotations or {})]

    wait_for(lambda: len(asked_to_checkpoint()) == 3, 60, "the 3 surplus workers annotated to checkpoint",
             interval=0.1)
    wait_for(lambda: bound_workers(core, namespace, "grow", 2), 90, "the job shrunk to 2 workers")
    custom.delete_namespaced_custom_object(*args, "grow")
    wait_for(lambda: not core.list_namespaced_pod(namespace).items, 90, "its workers to be collected")
    assert_no_refusals(release)


def test_upgrade_to_a_restricted_namespace_admits_every_pod(tools: Tools, release: Release,
                                                           core: client.CoreV1Api, custom: client.CustomObjectsApi):
    kubectl(tools, release, "create", "namespace", DAEMON_NAMESPACE)
    kubectl(tools, release, "label", "namespace", DAEMON_NAMESPACE, *(f"{k}={v}" for k, v in PRIVILEGED.items()))
    release.stop("node-daemon")  # its pod, ServiceAccount and binding move to the new namespace
    helm(tools, release, "upgrade", RELEASE, str(CHART), "--namespace", NAMESPACE, "--reuse-values",
         "--set", f"nodeDaemon.namespace={DAEMON_NAMESPACE}", "--set", "operator.replicas=2")
    wait_for(lambda: not pods_of(core, NAMESPACE, "node-daemon", terminating=True), 90,
             "the node daemon's pods to be gone from stretto-system")
    _, warnings = kubectl(tools, release, "label", "--overwrite", "namespace", NAMESPACE,
                          *(f"{k}={v}" for k, v in RESTRICTED.items()))
    assert "violate" not in warnings, warnings  # no running pod of the release breaks `restricted`

    # New pods are checked on admission: replace every pod of the release.
    for component in ("operator", "scheduler"):
        old = {p.metadata.name for p in pods_of(core, NAMESPACE, component)}
        for name in old:
            try:
                core.delete_namespaced_pod(name, NAMESPACE)
            except ApiException as error:  # the upgrade's rollout may have removed it meanwhile
                if error.status != 404:
                    raise
        wait_for(lambda c=component, o=old: [p for p in pods_of(core, NAMESPACE, c)
                                             if p.metadata.name not in o and p.status.phase == "Running"],
                 90, f"a new {component} pod admitted under `restricted`")
    wait_for(lambda: len(pods_of(core, NAMESPACE, "operator")) == 2, 60, "2 operator replicas")
    wait_for(lambda: len([p for p in pods_of(core, DAEMON_NAMESPACE, "node-daemon")
                          if p.status.phase == "Running"]) == len(release.state.nodes), 90,
             "the node daemon's pods in its privileged namespace")

    # The daemon's exceptions are exactly the documented ones: `restricted` refuses it for these only.
    daemon = manifest(tools, release, "daemonset", "stretto-node-daemon", DAEMON_NAMESPACE)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "daemon-probe"}, "spec": pod_spec(daemon)}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(NAMESPACE, pod, dry_run="All")
    assert refused.value.status == 403
    message = json.loads(refused.value.body)["message"]
    violations = message.split("violates PodSecurity \"restricted:latest\": ", 1)[1]
    assert sorted(v.split(" (")[0].split(" != ")[0].strip() for v in violations.split("), ")) == sorted(
        ["host namespaces", "restricted volume types", "runAsNonRoot", "runAsUser=0"]), message
    assert 'volumes "control", "shim" use restricted volume type "hostPath"' in message

    # The operator restarts with the Deployment's new arguments (two replicas: the Lease) and the daemon
    # as its ServiceAccount in its new namespace; a new job is scheduled as before.
    release.start_operator(manifest(tools, release, "deployment", "stretto-operator"))
    release.start_node_daemon(DAEMON_NAMESPACE, release.state.nodes[1], name="node-daemon-moved")
    namespace = f"team-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": namespace}})
    custom.create_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                           contracts.TRAININGJOB_PLURAL, training_job("bert", 2))
    try:
        wait_for(lambda: bound_workers(core, namespace, "bert", 2), 120, "2 workers of a job after the upgrade")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{diagnosis(release, core, custom, namespace, 'bert')}") from None
    wait_for(lambda: "leading the round loop" in release.log("operator"), 30, "the operator to take its Lease")
    assert_no_refusals(release)


def test_uninstall_removes_the_release_and_keeps_what_the_readme_says(
        tools: Tools, release: Release, core: client.CoreV1Api, custom: client.CustomObjectsApi):
    release.stop_all()  # the release's pods go with it
    helm(tools, release, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    left, _ = kubectl(tools, release, "get", "deployments,daemonsets,configmaps,serviceaccounts,services,"
                      "networkpolicies,roles,rolebindings", "-n", NAMESPACE,
                      "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name")
    assert not left.strip(), left
    cluster_left, _ = kubectl(tools, release, "get", "clusterroles,clusterrolebindings", "-o", "name",
                              "-l", f"app.kubernetes.io/instance={RELEASE}")
    assert not cluster_left.strip(), cluster_left
    # Kept: the CRD (Helm never deletes crds/), hence every job and its workers, and the run-time objects.
    kubectl(tools, release, "get", "crd", "trainingjobs.stretto.io")
    jobs = custom.list_cluster_custom_object(contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL)
    assert sorted(j["metadata"]["name"] for j in jobs["items"]) == ["bert", "resnet"]
    core.read_namespaced_secret("stretto-progress-key", NAMESPACE)
    leases, _ = kubectl(tools, release, "get", "leases", "-n", NAMESPACE, "-o", "name")
    assert {"lease.coordination.k8s.io/stretto-operator", "lease.coordination.k8s.io/stretto-scheduler"} <= set(
        leases.split()), leases


def test_the_cleanup_hook_removes_the_jobs_and_the_run_time_objects_as_its_service_account(
        tools: Tools, release: Release, core: client.CoreV1Api, custom: client.CustomObjectsApi, tmp_path: Path):
    """The pre-delete hook's ServiceAccount and RBAC, applied as Helm would before the hook Job; the
    Job's own command then runs here (kwok would only pretend to run it)."""
    hook = tools.run("helm", "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--set",
                     "cleanup.deleteTrainingJobsOnUninstall=true", "--show-only", "templates/cleanup-hook.yaml").stdout
    rendered = [d for d in yaml.safe_load_all(hook) if d]
    job = next(d for d in rendered if d["kind"] == "Job")
    kubectl(tools, release, "apply", "-f", "-", stdin=yaml.safe_dump_all([d for d in rendered if d["kind"] != "Job"]))
    args = list(job["spec"]["template"]["spec"]["containers"][0]["args"])
    assert args[:3] == ["cleanup", "--namespace", NAMESPACE]
    kubeconfig = release.service_account_kubeconfig(NAMESPACE, "stretto-cleanup")
    record = release.stretto("cleanup", [*args, "--kubeconfig", str(kubeconfig)])
    wait_for(lambda: not record.alive(), 180, "stretto cleanup to finish")
    output = release.log("cleanup")
    assert "removed Secret" in output, output
    assert not refusals(output), output
    assert not custom.list_cluster_custom_object(contracts.GROUP, contracts.VERSION,
                                                 contracts.TRAININGJOB_PLURAL)["items"]
    assert not core.list_pod_for_all_namespaces(
        label_selector=f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}").items
    leases, _ = kubectl(tools, release, "get", "leases", "-n", NAMESPACE, "-o", "name")
    assert "stretto-" not in leases, leases
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_secret("stretto-progress-key", NAMESPACE)
    assert gone.value.status == 404
