"""Pods bound per second through kube-scheduler + Stretto's extender, against kube-scheduler alone.

One dev cluster of `--nodes` kwok nodes x 8 GPUs in a temporary directory, and `--pods` one-GPU pods
per phase, all created before their scheduler starts, so the figure is the scheduler's pace, not the
creation's:
1. baseline: a second kube-scheduler (profile `baseline-scheduler`, no extender, the same
   KubeSchedulerConfiguration otherwise) binds its pods;
2. stretto: the dev cluster's kube-scheduler (profile `stretto-scheduler`) with the extender's filter and
   bind;
3. stretto, planned: the same, each pod annotated with a planned node (as the operator writes them).
Pods/s is counted from the first pod seen bound to the last (a poll every 0.5 s); the ratio is against
the baseline of the same run. Bind time-outs are kube-scheduler's log lines for extender binds that
exceeded its httpTimeout; "already booked" the extender's refusals of a pod it holds a booking for.

    .venv/bin/python bench/bench_bind_throughput.py [--nodes 1000] [--pods 2000]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

from stretto import contracts
from stretto.devcluster import configs, processes
from stretto.devcluster.binaries import build_binaries
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.rest import ApiError, RestClient
from stretto.devcluster.stretto_stack import start_extender

NAMESPACE = "bind-bench"
BASELINE = "baseline-scheduler"


def pod(index: int, scheduler: str, planned: str | None) -> dict:
    annotations = {contracts.ANNOTATION_PLANNED_NODE: planned} if planned else {}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"w-{index:05d}", "namespace": NAMESPACE, "annotations": annotations},
            "spec": {"schedulerName": scheduler, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "w", "image": "busybox",
                                     "resources": {"limits": {contracts.GPU_RESOURCE: "1"},
                                                   "requests": {"cpu": "1", "memory": "1Gi"}}}]}}


def bound_count(rest: RestClient) -> int:
    listing = rest.get(f"/api/v1/namespaces/{NAMESPACE}/pods?fieldSelector=spec.nodeName%21%3D&resourceVersion=0")
    return len(listing.get("items", []))


def measure(rest: RestClient, total: int, timeout: float) -> tuple[float, float]:
    """(pods/s from the first bound pod seen to the last, seconds to bind all)."""
    deadline = time.monotonic() + timeout
    first: tuple[float, int] | None = None
    started = time.monotonic()
    while time.monotonic() < deadline:
        try:
            count = bound_count(rest)
        except (ApiError, OSError):
            time.sleep(0.5)
            continue
        now = time.monotonic()
        if count and first is None:
            first = (now, count)
        if count >= total:
            assert first is not None
            span = now - first[0]
            return ((count - first[1]) / span if span > 0 else float("inf")), now - started
        time.sleep(0.5)
    raise RuntimeError(f"only {bound_count(rest)}/{total} pods bound within {timeout:.0f}s")


def create_pods(rest: RestClient, total: int, scheduler: str, nodes: list[str], planned: bool) -> None:
    for i in range(total):
        rest.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods",
                     pod(i, scheduler, nodes[i % len(nodes)] if planned else None))


def delete_pods(rest: RestClient, timeout: float = 600) -> None:
    """Delete the phase's pods (one collection DELETE, which the API server serves in one long request)."""
    rest.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods?gracePeriodSeconds=0")
    deadline = time.monotonic() + timeout
    while rest.get(f"/api/v1/namespaces/{NAMESPACE}/pods?limit=1").get("items"):
        if time.monotonic() > deadline:
            raise RuntimeError("the previous phase's pods did not go away")
        time.sleep(1)


def count_lines(path: Path, needle: str, since: int) -> int:
    with path.open("rb") as handle:
        handle.seek(since)
        return sum(needle.encode() in line for line in handle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the cluster (finally)
    print(describe())
    progress = lambda msg: print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="stretto-bench-bind-") as tmp:
        cluster = DevCluster(Path(tmp))
        try:
            state = cluster.up(args.nodes, 8, progress=progress)
            rest = cluster.rest(state, timeout=60)
            rest.create("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}})
            start_extender(cluster, state)
            state = cluster.load_state() or state  # now with the extender's record
            config = configs.scheduler_configuration(state.kubeconfig, state.extender_port, stretto_profile=False)
            config["profiles"] = [{"schedulerName": BASELINE}]
            config_path = configs.write_yaml(Path(tmp) / "baseline-scheduler.yaml", config)
            binaries = build_binaries(progress)
            results: dict[str, tuple[float, float, int, int]] = {}
            scheduler_log = Path(state.processes["kube-scheduler"].log)
            extender_log = Path(state.processes["extender"].log)
            processes.kill(state.processes["kube-scheduler"])  # pods are created before their scheduler runs
            for phase, scheduler, planned in (("baseline (no extender)", BASELINE, False),
                                              ("stretto", contracts.SCHEDULER_NAME, False),
                                              ("stretto, planned nodes", contracts.SCHEDULER_NAME, True)):
                load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
                progress(f"{phase}: creating {args.pods} pods ({load})")
                create_pods(rest, args.pods, scheduler, state.nodes, planned)
                marks = (scheduler_log.stat().st_size, extender_log.stat().st_size)
                if scheduler == BASELINE:
                    baseline = processes.start(BASELINE, [
                        str(binaries.kube_scheduler), f"--config={config_path}", "--bind-address=127.0.0.1",
                        f"--secure-port={processes.free_port()}", f"--authentication-kubeconfig={state.kubeconfig}",
                        f"--authorization-kubeconfig={state.kubeconfig}", "--v=1"], cluster.log_dir)
                else:
                    cluster.restart("kube-scheduler")
                progress(f"{phase}: scheduler started")
                rate, seconds = measure(rest, args.pods, args.timeout)
                timeouts = 0 if scheduler == BASELINE else count_lines(scheduler_log, "context deadline exceeded",
                                                                       marks[0])
                booked = count_lines(extender_log, "already holds a booking", marks[1])
                results[phase] = (rate, seconds, timeouts, booked)
                if scheduler == BASELINE:
                    processes.stop(baseline)
                else:
                    processes.kill(cluster.load_state().processes["kube-scheduler"])  # type: ignore[union-attr]
                progress(f"{phase}: {rate:.1f} pods/s; deleting the pods")
                delete_pods(cluster.rest(state, timeout=600))
        finally:
            cluster.down(progress=progress)
    base = results["baseline (no extender)"][0]
    print(f"\n{args.pods} one-GPU pods on {args.nodes} kwok nodes x 8 GPUs")
    print(f"{'phase':<24} {'pods/s':>8} {'vs base':>8} {'all bound':>10} {'bind t/o':>9} {'booked':>7}")
    for phase, (rate, seconds, timeouts, booked) in results.items():
        print(f"{phase:<24} {rate:>8.1f} {rate / base:>7.2f}x {seconds:>9.1f}s {timeouts:>9} {booked:>7}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
