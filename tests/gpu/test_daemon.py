"""The node daemon's pure parts (controller, shares, pid mapping) and its loop on the mock NVML."""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request

import pytest

from stretto import contracts
from stretto.gpu_interceptor import control_file as cf
from stretto.gpu_interceptor import controller as ctl
from stretto.gpu_interceptor import metrics, pids
from stretto.gpu_interceptor.command import register
from stretto.gpu_interceptor.daemon import DaemonArgs, DaemonReport, NodeDaemon
from stretto.gpu_interceptor.shares import ContainerShare, shares_from_file, shares_from_pod

ARGS = ctl.ControllerArgs()


@pytest.mark.parametrize(
    ("specs", "demands", "want"),
    [
        pytest.param({"a": (60, 100), "b": (20, 100)}, {"a": 100, "b": 100}, {"a": 70, "b": 30}, id="both-greedy"),
        pytest.param({"a": (60, 100), "b": (20, 100)}, {"a": 100, "b": 5}, {"a": 95, "b": 5}, id="b-idle"),
        pytest.param({"a": (60, 100), "b": (20, 100)}, {"a": 30, "b": 100}, {"a": 30, "b": 70}, id="a-demand-limited"),
        pytest.param({"a": (0, 30)}, {"a": 30}, {"a": 30}, id="cap-alone"),
        pytest.param({"a": (0, 30), "b": (0, 100)}, {"a": 30, "b": 100}, {"a": 30, "b": 70}, id="max-respected"),
        pytest.param({"a": (70, 100), "b": (70, 100)}, {"a": 100, "b": 100}, {"a": 50, "b": 50}, id="overcommitted"),
        pytest.param({"a": (10, 100), "b": (10, 100)}, {"a": 0, "b": 0}, {"a": 1, "b": 1}, id="idle-floor"),
    ],
)
def test_arbitration_gives_minimums_first_then_water_fills_up_to_max(specs, demands, want):
    got = ctl.arbitrate_gpu({k: ctl.ShareSpec(*v) for k, v in specs.items()}, demands)
    assert got == pytest.approx(want)
    assert sum(min(g, demands[k]) for k, g in got.items()) <= 100 + 1e-9
    for k, (lo, hi) in specs.items():
        assert got[k] <= hi
        if demands[k] >= lo and sum(v[0] for v in specs.values()) <= 100:
            assert got[k] >= lo


@pytest.mark.parametrize(
    ("obs", "prev_cap", "want"),
    [
        pytest.param(ctl.Observation(10, 1000, 0.5), 30, 100, id="throttled-is-greedy"),
        pytest.param(ctl.Observation(29, 1000, 0.0), 30, 100, id="at-cap-is-greedy"),
        pytest.param(ctl.Observation(12, 1000, 0.0), 30, 17, id="demand-limited-gets-headroom"),
        pytest.param(None, 30, 100, id="new-container-starts-at-max"),
    ],
)
def test_demand_reads_throttling_and_headroom(obs, prev_cap, want):
    assert ctl.demand_pct(ctl.ShareSpec(0, 100), obs, prev_cap, ARGS) == want


@pytest.mark.parametrize("cap", [10, 30, 50, 70, 90])
@pytest.mark.parametrize("tokens_per_pct", [3.0, 700.0, 25_000.0])
def test_rate_converges_to_the_cap_whatever_a_token_costs(cap, tokens_per_pct):
    rate = ctl.initial_rate(cap, ARGS)  # a guess off by up to ~700x
    util = 0.0
    for _ in range(30):
        util = min(100.0, rate / tokens_per_pct)  # a greedy workload: the bucket (or the GPU) is the limit
        consumed = util * tokens_per_pct  # a saturated GPU runs no more tokens than it has time for
        rate = ctl.next_rate(rate, cap, ctl.Observation(util, consumed, 0.5), ARGS)
    assert util == pytest.approx(cap, rel=0.02)


def test_idle_container_keeps_its_rate_and_fallback_follows_the_minimum():
    assert ctl.next_rate(500.0, 50, ctl.Observation(0.0, 0.0, 0.0), ARGS) == 500.0
    assert ctl.fallback_rate(600.0, 60, ctl.ShareSpec(20, 60)) == pytest.approx(200.0)
    assert ctl.fallback_rate(600.0, 60, ctl.ShareSpec(0, 60)) == 0.0


def pod(**ann: str) -> dict:
    return {
        "metadata": {"uid": "u-1", "name": "job-worker-0", "namespace": "ml", "annotations": ann},
        "spec": {"nodeName": "n1", "containers": [
            {"name": "sidecar"},
            {"name": "worker", "resources": {"limits": {contracts.GPU_SHARE_RESOURCE: "1"}}},
        ]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "worker", "containerID": "containerd://abc"}]},
    }


def test_shares_come_from_the_extenders_bind_annotations():
    (s,) = shares_from_pod(pod(**{contracts.ANNOTATION_GPU_IDS: "1", contracts.ANNOTATION_GPU_MEMORY: "4294967296",
                                  contracts.ANNOTATION_GPU_MIN_UTIL: "20", contracts.ANNOTATION_GPU_MAX_UTIL: "60"}))
    assert (s.key, s.gpu_ids, s.memory_bytes, s.min_pct, s.max_pct) == ("u-1/worker", (1,), 4 << 30, 20, 60)
    assert (s.namespace, s.pod, s.container_id) == ("ml", "job-worker-0", "abc")


@pytest.mark.parametrize(
    ("ann", "phase", "want"),
    [
        pytest.param({}, "Running", [], id="not-bound-to-a-gpu"),
        pytest.param({contracts.ANNOTATION_GPU_IDS: "0,1"}, "Running", [], id="whole-gpus-no-share"),
        pytest.param({contracts.ANNOTATION_GPU_IDS: "0", contracts.ANNOTATION_GPU_MAX_UTIL: "50"}, "Succeeded", [],
                     id="finished"),
        pytest.param({contracts.ANNOTATION_GPU_IDS: "0", contracts.ANNOTATION_GPU_MAX_UTIL: "50"}, "Pending",
                     [(None, 0.0, 50.0)], id="max-only"),
    ],
)
def test_pods_without_a_live_share_get_no_control_file(ann, phase, want):
    p = pod(**ann)
    p["status"]["phase"] = phase
    assert [(s.memory_bytes, s.min_pct, s.max_pct) for s in shares_from_pod(p)] == want


@pytest.mark.parametrize("bad", [{contracts.ANNOTATION_GPU_MIN_UTIL: "80", contracts.ANNOTATION_GPU_MAX_UTIL: "50"},
                                 {contracts.ANNOTATION_GPU_MAX_UTIL: "150"}, {contracts.ANNOTATION_GPU_MEMORY: "lots"}])
def test_malformed_share_annotations_are_errors(bad):
    with pytest.raises(ValueError):
        shares_from_pod(pod(**{contracts.ANNOTATION_GPU_IDS: "0", **bad}))


def test_cgroup_lines_map_host_pids_to_pod_and_container():
    share = ContainerShare("1f2e-33", "worker", (0,), None, 0, 100, container_id="abc")
    other = ContainerShare("9999-00", "worker", (0,), None, 0, 100)
    line = "0::/kubepods.slice/kubepods-burstable-pod1f2e_33.slice/cri-containerd-abc.scope\n"
    assert pids.container_of_cgroup(line, {"x": share, "y": other}) == "x"
    assert pids.container_of_cgroup("0::/user.slice\n", {"x": share}) is None
    wrong_container = line.replace("abc", "def")
    assert pids.container_of_cgroup(wrong_container, {"x": share}) is None
    assert pids.resolve_by_ledger([5, 6, 7], {}, {"x": (5,), "y": (7,)}) == {5: "x", 7: "y"}


def test_daemon_writes_removes_and_readopts_control_files(inprocess_nvml, tmp_path):
    from stretto.gpu_interceptor.nvml_backend import NvmlBackend

    backend = NvmlBackend()
    assert backend.device_count == 2
    share = ContainerShare("pod-a", "w", (1,), 2 << 30, 20, 60, namespace="ns", pod="p")
    daemon = NodeDaemon(control_root=tmp_path, backend=backend, args=DaemonArgs(stale_after_ms=5000))
    daemon.set_containers([share])
    block = cf.read_control_file(cf.control_path(tmp_path, "pod-a", "w"))
    assert block.memory_limit_bytes == 2 << 30 and (block.util_min_bp, block.util_max_bp) == (2000, 6000)
    assert block.stale_after_ms == 5000 and block.rate_tokens_per_s == 2000 * 60
    assert cf.ledger_path(tmp_path, "pod-a", "w").stat().st_size == cf.LEDGER_FILE_SIZE
    daemon.tick()
    daemon.tick()  # idle container: nothing to learn, the rate stays
    report = {c.share.key: c for c in daemon.report.containers}
    assert report["pod-a/w"].rate == 2000 * 60 and report["pod-a/w"].util_pct == 0
    assert [g.name for g in daemon.report.gpus] == ["Stretto Fake A100 40GB"] * 2

    restarted = NodeDaemon(control_root=tmp_path, backend=backend)
    restarted.set_containers([share])  # a restarted daemon resumes from the file's generation
    assert cf.read_control_file(cf.control_path(tmp_path, "pod-a", "w")).generation > block.generation
    restarted.set_containers([])
    assert not (tmp_path / "pod-a").exists()

    registry = metrics.build_registry(lambda: daemon.report)
    server = metrics.serve(0, registry, lambda: True, host="127.0.0.1")
    try:
        port = server.server_address[1]
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz")
        assert health.status == 200
    finally:
        server.shutdown()
    for name in ("stretto_gpu_utilization_percent", "stretto_gpu_memory_used_bytes",
                 "stretto_container_gpu_utilization_percent", "stretto_container_gpu_memory_used_bytes",
                 "stretto_container_gpu_memory_limit_bytes", "stretto_container_gpu_throttled_seconds_total"):
        assert name in body, name
    assert 'pod_uid="pod-a"' in body and "2.147483648e+09" in body


def test_unhealthy_daemon_answers_503():
    server = metrics.serve(0, metrics.build_registry(DaemonReport), lambda: False, host="127.0.0.1")
    try:
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_address[1]}/healthz")
        assert e.value.code == 503
    finally:
        server.shutdown()


def test_cli_registers_node_daemon_and_requires_a_share_source(tmp_path):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["node-daemon", "--node", "n1", "--control-dir", str(tmp_path), "--metrics-port", "9999"])
    assert (args.node, args.control_dir, args.metrics_port, args.kubeconfig) == ("n1", tmp_path, 9999, None)
    assert callable(args.func)
    bare = parser.parse_args(["node-daemon", "--control-dir", str(tmp_path)])
    assert bare.func(bare) == 2


def test_shares_file_round_trip(tmp_path):
    path = tmp_path / "shares.json"
    path.write_text(json.dumps({"containers": [{"pod_uid": "u", "container": "c", "gpu_ids": [2],
                                                "memory": "4Gi", "min_utilization": 10, "max_utilization": 40}]}))
    (s,) = shares_from_file(path)
    assert (s.key, s.gpu_ids, s.memory_bytes, s.min_pct, s.max_pct) == ("u/c", (2,), 4 << 30, 10, 40)
