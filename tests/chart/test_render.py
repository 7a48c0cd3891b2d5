"""The chart renders, lints strictly, and refuses bad values at template time, naming the value."""

from __future__ import annotations

import pytest

from stretto import contracts
from tests.chart.chart_tools import CHART, NAMESPACE, Tools, find, pod_spec

# Realistic installs: what a platform team sets.
VALUE_MATRIX = {
    "defaults": (),
    "ha-operator": ("operator.replicas=3",),
    "own-daemon-namespace": ("nodeDaemon.namespace=stretto-node", "nodeDaemon.nodeSelector.accelerator=nvidia"),
    "no-daemon-no-policy": ("nodeDaemon.enabled=false", "networkPolicy.enabled=false"),
    "mock-nvml-kind": ("nodeDaemon.mockNvml=true", "image.tag=dev", "image.pullPolicy=Never"),
    "tuned-rounds": ("operator.config.roundSeconds=30", "operator.config.scheduler.policy.name=stretto",
                     "operator.config.scheduler.packer.name=synergy-tune", "operator.config.tenantWeights.vision=2"),
    "cleanup-hook": ("cleanup.deleteTrainingJobsOnUninstall=true", "cleanup.timeoutSeconds=600"),
    "ports": ("scheduler.extenderPort=9999", "operator.progressPort=9081", "nodeDaemon.metricsPort=9500"),
}

# value -> the path helm's schema error must name
BAD_VALUES = {
    "operator.config.scheduler.policy.name=no-such-policy": "/operator/config/scheduler/policy/name",
    "operator.config.scheduler.packer.name=tetris": "/operator/config/scheduler/packer/name",
    "operator.config.scheduler.predictor.name=oracle": "/operator/config/scheduler/predictor/name",
    "nodeDaemon.enabled=no": "/nodeDaemon/enabled",
    "scheduler.extenderPort=abc": "/scheduler/extenderPort",
    "scheduler.extenderPort=70000": "/scheduler/extenderPort",
    "operator.replicas=0": "/operator/replicas",
    "operator.config.roundSeconds=0": "/operator/config/roundSeconds",
    "operator.config.tenantWeights.vision=-1": "/operator/config/tenantWeights/vision",
    "operator.config.rounds=5": "/operator/config",
    "operator.replica=2": "/operator",
    "image.pullPolicy=Sometimes": "/image/pullPolicy",
    "operator.resources.requests.cpu=lots": "/operator/resources/requests/cpu",
    "nodeDaemon.namespace=Not_A_Namespace": "/nodeDaemon/namespace",
}


def test_lint_strict_passes(tools: Tools):
    result = tools.run("helm", "lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout, result.stdout


@pytest.mark.parametrize("case", sorted(VALUE_MATRIX))
def test_realistic_values_render_and_lint(tools: Tools, case: str):
    values = VALUE_MATRIX[case]
    objects = tools.render(*values)
    assert find(objects, "Deployment", "stretto-operator") and find(objects, "Deployment", "stretto-scheduler")
    lint = ["lint", "--strict", str(CHART)]
    for value in values:
        lint += ["--set", value]
    tools.run("helm", *lint)


@pytest.mark.parametrize("value", sorted(BAD_VALUES))
def test_bad_values_are_refused_at_template_time_naming_the_value(tools: Tools, value: str):
    result = tools.template(value, check=False)
    assert result.returncode != 0, f"--set {value} rendered"
    assert "values don't meet the specifications of the schema" in result.stderr, result.stderr
    assert f"at '{BAD_VALUES[value]}'" in result.stderr, result.stderr


def test_operator_extender_and_scheduler_run_restricted(tools: Tools):
    objects = tools.render()
    for name in ("stretto-operator", "stretto-scheduler"):
        spec = pod_spec(find(objects, "Deployment", name))
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, container["name"]
            assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert not spec.get("hostPID") and not [v for v in spec.get("volumes", []) if "hostPath" in v]


def test_the_extender_listens_on_loopback_and_kube_scheduler_calls_it_there(tools: Tools):
    objects = tools.render("scheduler.extenderPort=9999")
    spec = pod_spec(find(objects, "Deployment", "stretto-scheduler"))
    extender = next(c for c in spec["containers"] if c["name"] == "extender")
    assert extender["args"] == ["extender", "--host", "127.0.0.1", "--port", "9999"]
    assert "ports" not in extender  # nothing to expose
    config = find(objects, "ConfigMap", "stretto-scheduler-config")["data"]["config.yaml"]
    assert "urlPrefix: http://127.0.0.1:9999" in config


def test_the_node_daemon_mounts_the_paths_the_operator_gives_workers(tools: Tools):
    spec = pod_spec(find(tools.render(), "DaemonSet", "stretto-node-daemon"))
    host_paths = sorted(v["hostPath"]["path"] for v in spec["volumes"])
    assert host_paths == sorted([contracts.HOST_CONTROL_ROOT, contracts.HOST_SHIM_DIR])
    daemon = next(c for c in spec["containers"] if c["name"] == "daemon")
    assert daemon["args"][daemon["args"].index("--control-dir") + 1] == contracts.HOST_CONTROL_ROOT


def test_rbac_has_no_wildcard_and_secrets_are_never_listed_cluster_wide(tools: Tools):
    objects = tools.render("cleanup.deleteTrainingJobsOnUninstall=true", "operator.replicas=2")
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            if role["kind"] == "ClusterRole" and {"secrets", "configmaps"} & set(rule["resources"]):
                assert not {"get", "list", "watch"} & set(rule["verbs"]), (role["metadata"]["name"], rule)
    operator = find(objects, "ClusterRole", "stretto-operator")
    assert any("trainingjobs/finalizers" in r["resources"] and r["verbs"] == ["update"] for r in operator["rules"])
    scheduler = find(objects, "Role", "stretto-scheduler")
    assert any(r.get("resourceNames") == ["stretto-scheduler"] for r in scheduler["rules"])


def test_the_node_daemon_can_live_in_its_own_namespace(tools: Tools):
    objects = tools.render("nodeDaemon.namespace=stretto-node")
    daemon_objects = [o for o in objects if o["metadata"]["name"] == "stretto-node-daemon"
                      and o["kind"] in ("DaemonSet", "ServiceAccount", "NetworkPolicy")]
    assert len(daemon_objects) == 3 and all(o["metadata"]["namespace"] == "stretto-node" for o in daemon_objects)
    binding = find(objects, "ClusterRoleBinding", "stretto-node-daemon")
    assert binding["subjects"][0]["namespace"] == "stretto-node"
    others = [o for o in objects if o["metadata"].get("namespace") not in (None, "stretto-node", "kube-system")]
    assert others and all(o["metadata"]["namespace"] == NAMESPACE for o in others)
