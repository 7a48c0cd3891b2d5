"""The operator's round on a real control plane: snapshot, solve, apply for 200 jobs on 32 fake nodes;
scale-up and scale-down latency from a small scenario.

Starts its own dev cluster (32 kwok nodes x 8 GPUs, Stretto's extender) in a temporary directory and
runs the operator's `RoundLoop.run_once` in this process with KUBECONFIG set (the operator's default
plugins: bayesian-regime, elastic, proportional). A round is split where `run_once` calls the core:
snapshot = reading jobs, nodes and pods and building the snapshot; solve = `run_round`; apply = plans
handed to the reconciler and every job reconciled (pods created, statuses patched).

Latency: a rigid filler holds all nodes but two; an elastic job (1-16 one-GPU workers) grows to 16
workers there (scale-up: decision → all 16 pods Running); a rigid newcomer of 8 one-GPU workers
arrives and the elastic job shrinks to 8 (scale-down: decision → the 8 removed pods gone, the
checkpoint notice included, and less it; and the newcomer's decision → its 8 pods Running); the
newcomer leaves and the elastic job grows back (scale-up 8→16). Between rounds the reconciler runs every 0.1 s,
as the operator's pod-event handlers would. Loopback only; the cluster is stopped at the end.

    .venv/bin/python bench/bench_operator_round.py [--jobs 200] [--nodes 32] [--rounds 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import describe  # bench/machine_info.py

from stretto import contracts
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.stretto_stack import start_extender, write_operator_config

CHECKPOINT_NOTICE_S = 2.0


def job(name: str, lo: int, hi: int, gpus_per_worker: int = 1, epochs: int = 1000) -> dict[str, Any]:
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"workers": {"min": lo, "max": hi}, "gpusPerWorker": gpus_per_worker,
                     "work": {"epochs": epochs, "samplesPerEpoch": 1281167}, "profile": {"model": "resnet50"},
                     "checkpoint": {"gracePeriodSeconds": 0},
                     "template": {"spec": {"containers": [{"name": "trainer", "image": "example/trainer"}]}}}}


def percentiles(values: list[float]) -> str:
    a = np.array(values) * 1000
    return f"p50 {np.percentile(a, 50):8.1f} ms  p99 {np.percentile(a, 99):8.1f} ms  (n={a.size})"


class TimedLoop:
    """`RoundLoop.run_once`, split at the core call (`run_round`) into snapshot, solve and apply."""

    def __init__(self) -> None:
        from stretto.operator import round_loop

        self.module = round_loop
        self.loop = round_loop.RoundLoop()
        self.original = round_loop.run_round
        self.marks: dict[str, float] = {}

        def timed_run_round(*args: Any, **kwargs: Any) -> Any:
            self.marks["solve_start"] = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.marks["solve_end"] = time.perf_counter()

        round_loop.run_round = timed_run_round

    def round(self) -> tuple[float, float, float, float]:
        """Run one round; returns (snapshot, solve, apply) seconds and the decision's perf_counter time."""
        start = time.perf_counter()
        self.loop.run_once()
        end = time.perf_counter()
        m = self.marks
        return m["solve_start"] - start, m["solve_end"] - m["solve_start"], end - m["solve_end"], m["solve_end"]


def worker_pods(core: Any, namespace: str, name: str) -> list[Any]:
    selector = f"{contracts.LABEL_JOB}={name},{contracts.LABEL_ROLE}={contracts.ROLE_WORKER}"
    return core.list_namespaced_pod(namespace, label_selector=selector).items


def until(check: Any, reconcile: Any, timeout: float = 120) -> float:
    """perf_counter time at which `check()` first holds, reconciling every 0.1 s meanwhile."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if check():
            return time.perf_counter()
        reconcile()
        time.sleep(0.1)
    raise TimeoutError("the scenario did not converge")


def latency_scenario(loop: TimedLoop, repeats: int, nodes: int) -> dict[str, list[float]]:
    from stretto.operator import kube, reconciler

    core, custom = kube.core(), kube.custom()
    namespace = "latency"
    core.create_namespace({"metadata": {"name": namespace}})
    plural = (contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL)

    def reconcile_all() -> None:
        for body in reconciler.list_jobs():
            if body["metadata"]["namespace"] == namespace:
                reconciler.reconcile(body)

    def running(name: str, count: int) -> bool:
        pods = [p for p in worker_pods(core, namespace, name) if not p.metadata.deletion_timestamp]
        return len(pods) == count and all(p.status.phase == "Running" for p in pods)

    def exactly(name: str, count: int) -> bool:
        return len(worker_pods(core, namespace, name)) == count

    # A rigid filler holds all but two nodes, so the elastic job's 16 workers are all there is to take from.
    custom.create_namespaced_custom_object(*plural, job("filler", nodes - 2, nodes - 2, gpus_per_worker=8))
    loop.round()
    until(lambda: running("filler", nodes - 2), reconcile_all)
    custom.create_namespaced_custom_object(*plural, job("elastic", 1, 16))
    figures: dict[str, list[float]] = {"scale-up 0→16": [], "scale-up 8→16": [], "scale-down 16→8": [],
                                       "scale-down less the notice": [], "newcomer 0→8 Running": []}
    *_, decided = loop.round()
    figures["scale-up 0→16"].append(until(lambda: running("elastic", 16), reconcile_all) - decided)
    for _ in range(repeats):
        custom.create_namespaced_custom_object(*plural, job("newcomer", 8, 8))
        *_, decided = loop.round()
        gone = until(lambda: exactly("elastic", 8), reconcile_all)
        figures["scale-down 16→8"].append(gone - decided)
        figures["scale-down less the notice"].append(gone - decided - CHECKPOINT_NOTICE_S)
        figures["newcomer 0→8 Running"].append(until(lambda: running("newcomer", 8), reconcile_all) - decided)
        custom.delete_namespaced_custom_object(*plural, "newcomer")
        until(lambda: exactly("newcomer", 0), lambda: None)
        *_, decided = loop.round()
        figures["scale-up 8→16"].append(until(lambda: running("elastic", 16), reconcile_all) - decided)
    core.delete_namespace(namespace)
    until(lambda: not core.list_namespaced_pod(namespace).items, lambda: None)
    return figures


def round_times(loop: TimedLoop, jobs: int, rounds: int) -> dict[str, list[float]]:
    from stretto.operator import kube

    core, custom = kube.core(), kube.custom()
    namespace = "scale"
    core.create_namespace({"metadata": {"name": namespace}})
    for i in range(jobs):  # 200 jobs, minimums of 1-2 one-GPU workers, maximums up to 4
        lo = 1 + i % 2
        custom.create_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace,
                                               contracts.TRAININGJOB_PLURAL, job(f"job-{i:03d}", lo, lo + i % 3))
    phases: dict[str, list[float]] = {"snapshot": [], "solve": [], "apply": [], "total": []}
    first = None
    for index in range(rounds):
        snapshot, solve, apply, _ = loop.round()
        if index == 0:
            first = (snapshot, solve, apply)
            continue
        for key, value in zip(phases, (snapshot, solve, apply, snapshot + solve + apply), strict=True):
            phases[key].append(value)
        time.sleep(1.0)  # pods get scheduled and run between rounds, as they would
    assert first is not None
    phases["first round (creates the pods)"] = list(first)
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory(prefix="stretto-bench-round-") as tmp:
        cluster = DevCluster(Path(tmp))
        try:
            state = cluster.up(nodes=args.nodes, progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
            start_extender(cluster, state)
            write_operator_config(cluster.rest(state), {"roundSeconds": 60, "checkpointNoticeSeconds":
                                                        CHECKPOINT_NOTICE_S})
            os.environ["KUBECONFIG"] = str(state.kubeconfig)
            loop = TimedLoop()
            latency = latency_scenario(loop, args.repeats, args.nodes)
            print(f"\nlatency, decision → pods Running / gone (checkpoint notice {CHECKPOINT_NOTICE_S:g} s; "
                  "one-GPU workers):")
            for name, values in latency.items():
                print(f"  {name:26s} median {statistics.median(values):6.2f} s  max {max(values):6.2f} s  "
                      f"(n={len(values)})")
            phases = round_times(loop, args.jobs, args.rounds)
            first = phases.pop("first round (creates the pods)")
            print(f"\nround time, {args.jobs} jobs on {args.nodes} fake nodes x 8 GPUs (after the first round):")
            for name, values in phases.items():
                print(f"  {name:9s} {percentiles(values)}")
            solve = statistics.median(phases["solve"])
            print(f"  ratios to the median solve: snapshot {statistics.median(phases['snapshot']) / solve:.1f}x, "
                  f"apply {statistics.median(phases['apply']) / solve:.1f}x, "
                  f"total {statistics.median(phases['total']) / solve:.1f}x")
            print(f"  first round (creates every worker): snapshot {first[0] * 1000:.0f} ms, solve "
                  f"{first[1] * 1000:.0f} ms, apply {first[2] * 1000:.0f} ms")
        finally:
            cluster.down(progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
