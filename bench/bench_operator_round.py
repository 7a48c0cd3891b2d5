"""The operator's round on a real control plane: round time, API calls and writes per round, memory,
at several sizes, against the operator as it was (`--baseline-rev`) in the same run; then the live kopf
operator at the largest size; and scale-up/scale-down latency from a small scenario (`--latency`).

Starts its own dev cluster (`--nodes` kwok nodes x 8 GPUs, Stretto's extender) in a temporary directory.
For each size of `--sizes`, that many TrainingJobs (minimums of 1-2 one-GPU workers, maximums up to 4)
are created and the operator's `RoundLoop.run_once` runs in this process with its cache fed by real
watches (list, then watch, as kopf feeds it in the operator); a round is split into snapshot (cache →
core input), solve (`run_round`) and apply (every job reconciled, writing what differs). API calls
are counted on the operator's Kubernetes client. The first round creates every worker; during the
catch-up that follows, the workers are bound and start and the passes between rounds write their
jobs' statuses; the steady rounds after it (1 s apart) should write nothing. At the largest size the
first round's writes are then made again alone (`creation_floor`: same objects, same threads, no reads
or decisions), so the first round's time is shown against what its writes alone cost on this machine.

The baseline is the same loop from git revision `--baseline-rev` (its own listing and reconciles),
run in a subprocess from an exported tree on the same cluster, so the ratios are from one run.
`--live` starts `stretto operator` (kopf) on the largest size, reads its per-round log lines, its
writes as the API server counts them (apiserver_request_total) and its resident memory.

    .venv/bin/python bench/bench_operator_round.py [--nodes 256] [--sizes 250,500,1000] [--rounds 6]
        [--baseline-rev c97e6b8] [--live] [--latency] [--no-floor]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import describe  # bench/machine_info.py

from stretto import contracts
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.stretto_stack import start_extender, write_operator_config

CHECKPOINT_NOTICE_S = 2.0
REPO = Path(__file__).resolve().parent.parent
MANAGED = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"


def job(name: str, lo: int, hi: int, gpus_per_worker: int = 1, epochs: int = 1000) -> dict[str, Any]:
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"workers": {"min": lo, "max": hi}, "gpusPerWorker": gpus_per_worker,
                     "work": {"epochs": epochs, "samplesPerEpoch": 1281167}, "profile": {"model": "resnet50"},
                     "checkpoint": {"gracePeriodSeconds": 0},
                     "template": {"spec": {"containers": [{"name": "trainer", "image": "example/trainer"}]}}}}


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q)) if values else float("nan")


# -- the loop under test, in this process (or, for the baseline, in a subprocess on an old tree) ---------
class CallCounter:
    """Counts every request the operator's Kubernetes client sends, by (method, is-write)."""

    def __init__(self, api_client: Any) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        original = api_client.call_api

        def counted(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[method.upper()] += 1
            return original(method, url, *args, **kwargs)

        api_client.call_api = counted

    def total(self) -> tuple[int, int]:
        with self._lock:
            writes = sum(n for m, n in self.calls.items() if m in ("POST", "PUT", "PATCH", "DELETE"))
            return sum(self.calls.values()), writes


class CacheFeed:
    """List, then watch, each kind into the cache from threads: what kopf's streams do in the operator."""

    def __init__(self, cache: Any) -> None:
        from kubernetes import client, config, watch

        from stretto.operator.cluster_cache import Kind

        api = config.new_client_from_config(os.environ["KUBECONFIG"])  # its own client: not counted
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        self.stop = threading.Event()
        calls = {
            Kind.JOB: lambda **kw: custom.list_cluster_custom_object(contracts.GROUP, contracts.VERSION,
                                                                     contracts.TRAININGJOB_PLURAL, **kw),
            Kind.POD: lambda **kw: core.list_pod_for_all_namespaces(label_selector=MANAGED, **kw),
            Kind.SERVICE: lambda **kw: core.list_service_for_all_namespaces(label_selector=MANAGED, **kw),
            Kind.NODE: lambda **kw: core.list_node(**kw),
        }
        for kind, call in calls.items():
            threading.Thread(target=self._run, args=(cache, kind, call, watch), daemon=True).start()

    def _run(self, cache: Any, kind: Any, call: Any, watch: Any) -> None:
        while not self.stop.is_set():
            try:
                listed = json.loads(call(_preload_content=False).data)
                version = listed["metadata"]["resourceVersion"]
                for item in listed["items"]:
                    cache.observe(kind, "ADDED", item)
                for event in watch.Watch().stream(call, resource_version=version, timeout_seconds=300,
                                                  allow_watch_bookmarks=False, deserialize=False):
                    cache.observe(kind, event["type"], event["raw_object"])
                    if self.stop.is_set():
                        return
            except Exception as error:  # a watch that expired (410) or broke: list and watch again
                print(f"[feed] {kind}: {error}; relisting", file=sys.stderr)
                time.sleep(0.5)


class LoopUnderTest:
    """The operator's round loop as this tree builds it (new: cache + reconciler; old: one object)."""

    def __init__(self) -> None:
        from stretto.operator import kube, round_loop

        self.counter = CallCounter(kube.api_client())
        self.cached = "cache" in inspect.signature(round_loop.RoundLoop.__init__).parameters
        if self.cached:
            from stretto.operator.cluster_cache import ClusterCache
            from stretto.operator.reconciler import Reconciler

            cache = ClusterCache()
            self.feed = CacheFeed(cache)
            self.loop = round_loop.RoundLoop(cache, Reconciler(cache))
        else:
            self.loop = round_loop.RoundLoop()

    def round(self) -> dict[str, Any]:
        calls, writes = self.counter.total()
        start = time.perf_counter()
        self.loop.run_once()
        total = time.perf_counter() - start
        calls_after, writes_after = self.counter.total()
        figures = {"total": total, "calls": calls_after - calls, "writes": writes_after - writes}
        report = getattr(self.loop, "last_round", None)
        if report is not None:
            figures |= {"snapshot": report.snapshot_s, "solve": report.solve_s, "apply": report.apply_s}
        return figures

    def settle(self) -> None:
        """Between rounds: re-apply the jobs whose pods changed (the operator's dirty passes)."""
        if self.cached:
            self.loop.apply_dirty()


def all_workers_running() -> bool:
    """Every worker pod Running (a client of its own: not counted as the operator's calls)."""
    from kubernetes import client, config

    core = client.CoreV1Api(config.new_client_from_config(os.environ["KUBECONFIG"]))
    pods = json.loads(core.list_pod_for_all_namespaces(label_selector=MANAGED, _preload_content=False).data)["items"]
    return bool(pods) and all((p.get("status") or {}).get("phase") == "Running" for p in pods)


def run_rounds(rounds: int) -> dict[str, Any]:
    loop = LoopUnderTest()
    first = loop.round()
    plans = getattr(loop.loop, "plans", {})
    first["workers"] = {key.rsplit("/", 1)[-1]: plan.workers for key, plan in plans.items() if plan.workers}
    # Catch-up: the workers the first round created get bound and start; the operator's passes between
    # rounds (the watches' dirty jobs) write their statuses. Steady rounds are those after it.
    started, (calls, writes) = time.perf_counter(), loop.counter.total()
    deadline = started + 600
    while time.perf_counter() < deadline and not all_workers_running():
        for _ in range(10):
            loop.settle()
            time.sleep(0.1)
    for _ in range(20):
        loop.settle()
        time.sleep(0.1)
    calls_after, writes_after = loop.counter.total()
    catch_up = {"total": time.perf_counter() - started, "calls": calls_after - calls, "writes": writes_after - writes}
    steady = []
    for _ in range(rounds):
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            loop.settle()
            time.sleep(0.1)
        steady.append(loop.round())
    loop.settle()
    return {"first": first, "catch_up": catch_up, "steady": steady, "rss_mib": rss_mib()}


def creation_floor(rest: Any, namespace: str, count: int, workers: dict[str, int]) -> tuple[float, int]:
    """(seconds, writes) to make the first round's writes alone: for each job, with the round's 16 threads
    and the operator's client and builders, its headless Service, the workers the first round planned for
    it (bound by the same kube-scheduler and extender, and started by kwok, as the round's are), its event
    and its status patch. Nothing is read or decided: what the first round spends beyond this is its
    bookkeeping."""
    from concurrent.futures import ThreadPoolExecutor

    from stretto.operator import kube
    from stretto.operator.events import EventRecorder
    from stretto.operator.pod_builder import headless_service, worker_pod
    from stretto.operator.round_loop import APPLY_PARALLELISM

    create_jobs(rest, namespace, count)
    path = f"/apis/{contracts.GROUP}/{contracts.VERSION}/namespaces/{namespace}/{contracts.TRAININGJOB_PLURAL}"
    bodies = rest.get(path)["items"]
    core, custom, recorder = kube.core(), kube.custom(), EventRecorder()
    raw = {"_preload_content": False}

    def one_job(body: dict[str, Any]) -> int:
        name = body["metadata"]["name"]
        core.create_namespaced_service(namespace, headless_service(body), **raw)
        planned = workers.get(name, 0)
        for index in range(planned):
            core.create_namespaced_pod(namespace, worker_pod(body, index), **raw)
        recorder.record(body, "CreatedWorker", f"created {planned} workers")
        custom.patch_namespaced_custom_object_status(
            contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name,
            {"status": {"phase": "Pending", "allocation": {"workers": 0, "plannedWorkers": planned}}}, **raw)
        return 3 + planned

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=APPLY_PARALLELISM) as pool:
        writes = sum(pool.map(one_job, bodies))
    return time.perf_counter() - started, writes


# -- the scenario around it -------------------------------------------------------------------------
def create_jobs(rest: Any, namespace: str, count: int) -> None:
    rest.create("/api/v1/namespaces", {"metadata": {"name": namespace}})
    path = f"/apis/{contracts.GROUP}/{contracts.VERSION}/namespaces/{namespace}/{contracts.TRAININGJOB_PLURAL}"
    for i in range(count):
        lo = 1 + i % 2
        rest.request("POST", path, job(f"job-{i:05d}", lo, lo + i % 3))


def delete_namespace(rest: Any, namespace: str) -> None:
    rest.request("DELETE", f"/api/v1/namespaces/{namespace}")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        pods = rest.get(f"/api/v1/pods?labelSelector={MANAGED}&limit=1")["items"]
        namespaces = [n["metadata"]["name"] for n in rest.get("/api/v1/namespaces")["items"]]
        if not pods and namespace not in namespaces:
            return
        time.sleep(2)
    raise TimeoutError(f"namespace {namespace} was not deleted")


def baseline_tree(rev: str, into: Path) -> Path:
    """An import path holding `stretto` at `rev`, its three component folders mapped in as pyproject does
    (the path holds nothing else: a top-level `operator` would shadow the standard library's)."""
    tree = into / f"baseline-{rev}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for name in ("operator", "scheduler", "gpu_interceptor"):
        (tree / "stretto" / name).symlink_to(tree / name)
    path = tree / "import-path"
    path.mkdir()
    (path / "stretto").symlink_to(tree / "stretto")
    return path


def in_subprocess(tree: Path | None, rounds: int) -> dict[str, Any]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    out = subprocess.run([sys.executable, __file__, "--runner", "--rounds", str(rounds)], env=env, check=True,
                         capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def summary(name: str, result: dict[str, Any]) -> dict[str, float]:
    steady = result["steady"]
    totals = [r["total"] for r in steady]
    row = {"p50": pct(totals, 50), "p99": pct(totals, 99), "first": result["first"]["total"],
           "calls": statistics.median(r["calls"] for r in steady),
           "writes": statistics.median(r["writes"] for r in steady),
           "last_writes": steady[-1]["writes"], "first_calls": result["first"]["calls"], "rss": result["rss_mib"]}
    split = ""
    if "snapshot" in steady[0]:
        split = "  (median snapshot {:.3f} s, solve {:.3f} s, apply {:.3f} s)".format(
            *(statistics.median(r[k] for r in steady) for k in ("snapshot", "solve", "apply")))
    up = result["catch_up"]
    print(f"  {name}\n    steady p50 {row['p50']:7.3f} s  p99 {row['p99']:7.3f} s | first {row['first']:7.2f} s "
          f"({row['first_calls']} calls) | catch-up until every worker runs {up['total']:.1f} s ({up['calls']} calls, "
          f"{up['writes']} writes) | per steady round: {row['calls']:.0f} calls, {row['writes']:.0f} writes | "
          f"RSS {row['rss']:.0f} MiB{split}\n    steady rounds: "
          + ", ".join(f"{r['total']:.3f} s/{r['calls']} calls/{r['writes']} writes" for r in steady))
    return row


def live_operator(cluster: DevCluster, state: Any, rest: Any, jobs: int, rounds: int, out: Path) -> None:
    """`stretto operator` (kopf) on `jobs` jobs: its round log, its writes as the API server counts them, RSS."""
    write_operator_config(rest, {"roundSeconds": 10, "checkpointNoticeSeconds": CHECKPOINT_NOTICE_S})
    create_jobs(rest, "live", jobs)
    record = cluster.start_component("operator-live", ["operator", "--progress-host", "127.0.0.1", "--progress-port",
                                                       "0", "--progress-url", "http://127.0.0.1:1"],
                                     env={"STRETTO_CONFIG": "stretto-system/stretto-config"})
    pattern = re.compile(r"round (\d+): (\d+) jobs, snapshot ([\d.]+) s, solve ([\d.]+) s, apply ([\d.]+) s, "
                         r"(\d+) writes")

    def rounds_logged() -> list[tuple[float, ...]]:
        text = Path(record.log).read_text(errors="replace")
        return [tuple(float(g) for g in m.groups()) for m in pattern.finditer(text)]

    deadline = time.monotonic() + 900
    marks: dict[int, Counter[str]] = {}
    while time.monotonic() < deadline and len(rounds_logged()) < rounds + 1:
        seen = len(rounds_logged())
        if seen not in marks:
            marks[seen] = apiserver_writes(rest)
        time.sleep(0.5)
    logged = rounds_logged()
    memory = rss_mib(record.pid)
    steady = logged[2:]  # round 0 creates the workers; round 1 still sees them start
    totals = [s + v + a for _, _, s, v, a, _ in steady]
    print(f"\nlive kopf operator ({jobs} jobs, rounds every 10 s), {load()}:")
    if logged:
        first = logged[0]
        print(f"  first round {first[2] + first[3] + first[4]:.2f} s ({first[5]:.0f} writes)")
    if totals:
        print(f"  steady rounds p50 {pct(totals, 50):.3f} s  p99 {pct(totals, 99):.3f} s (n={len(totals)}); "
              f"writes per steady round (its own count): {[int(s[5]) for s in steady]}")
    if len(marks) >= 3:
        keys = sorted(marks)
        window = marks[keys[-1]] - marks[keys[2]]
        print(f"  operator-kind writes the API server counted over rounds {keys[2]}..{keys[-1]}: "
              f"{sum(window.values())} {dict(window)}")
    print(f"  operator resident memory {memory:.0f} MiB")
    (out / "live-operator.log").write_text(Path(record.log).read_text(errors="replace")[-200_000:])


def apiserver_writes(rest: Any) -> Counter[str]:
    """apiserver_request_total for the kinds the operator writes (pods, services, events, configmaps,
    trainingjobs, their status), by resource and verb; kube-scheduler's Bindings and kwok's status excluded."""
    text = rest.request("GET", "/metrics", content_type="text/plain")
    text = text if isinstance(text, str) else text.decode()
    counts: Counter[str] = Counter()
    for line in text.splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels, value = line[len("apiserver_request_total{"):].rsplit("} ", 1)
        found = dict(p.split("=", 1) for p in labels.replace('"', "").split(",") if "=" in p)
        resource = (found.get("group", ""), found.get("resource", ""), found.get("subresource", ""))
        if found.get("verb") in ("POST", "PUT", "PATCH", "DELETE") and resource in {
                ("", "pods", ""), ("", "services", ""), ("", "events", ""), ("", "configmaps", ""),
                ("stretto.io", "trainingjobs", "status")}:
            counts[f"{found['verb']} {resource[1]}{'/' + resource[2] if resource[2] else ''}"] += int(float(value))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=32)
    parser.add_argument("--sizes", default="200", help="comma-separated job counts (the growth curve)")
    parser.add_argument("--rounds", type=int, default=6, help="steady rounds per size")
    parser.add_argument("--baseline-rev", default=None, help="git revision of the operator to compare with")
    parser.add_argument("--live", action="store_true", help="also run the live kopf operator at the largest size")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip timing the first round's writes alone at the largest size")
    parser.add_argument("--latency", action="store_true", help="also the scale-up/scale-down latency scenario")
    parser.add_argument("--runner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.runner:  # inside the subprocess: one size's rounds, as JSON on the last line
        print(json.dumps(run_rounds(args.rounds)))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the cluster (finally)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(describe())
    print(f"{load()} at start")
    with tempfile.TemporaryDirectory(prefix="stretto-bench-round-") as tmp:
        cluster = DevCluster(Path(tmp))
        try:
            state = cluster.up(nodes=args.nodes, progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
            start_extender(cluster, state)
            rest = cluster.rest(state, timeout=60)
            write_operator_config(rest, {"roundSeconds": 60, "checkpointNoticeSeconds": CHECKPOINT_NOTICE_S})
            os.environ["KUBECONFIG"] = str(state.kubeconfig)
            if args.latency:
                latency_scenario(args.nodes)
            print(f"\nround time, {args.nodes} fake nodes x 8 GPUs; {args.rounds} steady rounds per size:")
            rows: dict[str, dict[str, float]] = {}
            for size in sizes:
                namespace = f"scale-{size}"
                create_jobs(rest, namespace, size)
                result = in_subprocess(None, args.rounds)
                rows[f"now {size}"] = summary(f"{size} jobs ({load()})", result)
                extender = cluster.load_state().processes["extender"]  # type: ignore[union-attr]
                print(f"    extender resident memory {rss_mib(extender.pid):.0f} MiB ({args.nodes} nodes, {size} jobs)")
                delete_namespace(rest, namespace)
                if size == sizes[-1] and not args.no_floor:
                    seconds, writes = creation_floor(rest, "floor", size, result["first"]["workers"])
                    first = result["first"]
                    print(f"  first round's writes alone ({writes}, 16 threads, bound as the round's are): "
                          f"{seconds:.2f} s; "
                          f"the first round ({first['writes']} writes) took {first['total'] / seconds:.2f}x that "
                          f"({load()})")
                    delete_namespace(rest, "floor")
            if args.baseline_rev:
                tree = baseline_tree(args.baseline_rev, Path(tmp))
                size = sizes[-1]
                create_jobs(rest, "scale-baseline", size)
                base = summary(f"{args.baseline_rev}: {size} jobs ({load()})", in_subprocess(tree, args.rounds))
                delete_namespace(rest, "scale-baseline")
                now = rows[f"now {size}"]
                print(f"  ratios now/baseline at {size} jobs: steady p50 {now['p50'] / base['p50']:.3f}x, "
                      f"p99 {now['p99'] / base['p99']:.3f}x, first round {now['first'] / base['first']:.3f}x, "
                      f"API calls per steady round {now['calls']:.0f} vs {base['calls']:.0f}")
            if args.live:
                live_operator(cluster, state, rest, sizes[-1], args.rounds, Path(tmp))
        finally:
            cluster.down(progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
    return 0


def latency_scenario(nodes: int) -> None:
    """Scale-up and scale-down latency (decision → pods Running / gone) with a rigid filler on all nodes but two."""
    from stretto.operator import kube

    loop = LoopUnderTest()
    core, custom = kube.core(), kube.custom()
    namespace = "latency"
    core.create_namespace({"metadata": {"name": namespace}})
    plural = (contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL)

    def pods(name: str) -> list[Any]:
        return core.list_namespaced_pod(namespace, label_selector=f"{contracts.LABEL_JOB}={name}").items

    def until(check: Any, timeout: float = 120) -> float:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if check():
                return time.perf_counter()
            loop.settle()
            time.sleep(0.1)
        raise TimeoutError("the scenario did not converge")

    def running(name: str, count: int) -> bool:
        live = [p for p in pods(name) if not p.metadata.deletion_timestamp]
        return len(live) == count and all(p.status.phase == "Running" for p in live)

    custom.create_namespaced_custom_object(*plural, job("filler", nodes - 2, nodes - 2, gpus_per_worker=8))
    loop.round()
    until(lambda: running("filler", nodes - 2))
    custom.create_namespaced_custom_object(*plural, job("elastic", 1, 16))
    time.sleep(0.5)
    loop.round()
    decided = time.perf_counter()
    up = until(lambda: running("elastic", 16)) - decided
    custom.create_namespaced_custom_object(*plural, job("newcomer", 8, 8))
    time.sleep(0.5)
    loop.round()
    decided = time.perf_counter()
    down = until(lambda: len(pods("elastic")) == 8) - decided
    newcomer = until(lambda: running("newcomer", 8)) - decided
    print(f"\nlatency, decision → pods Running / gone (checkpoint notice {CHECKPOINT_NOTICE_S:g} s): scale-up 0→16 "
          f"{up:.2f} s, scale-down 16→8 {down:.2f} s ({down - CHECKPOINT_NOTICE_S:.2f} s less the notice), "
          f"newcomer 0→8 Running {newcomer:.2f} s")
    loop.feed.stop.set()
    core.delete_namespace(namespace)
    until(lambda: not core.list_namespaced_pod(namespace).items, timeout=300)


if __name__ == "__main__":
    sys.exit(main())
