"""Extender filter latency (it scores too: it answers the best-fitting nodes), 1,000 fake nodes, HTTP.

Measures the nodeCacheCapable form (node names only, what Stretto's KubeSchedulerConfiguration
uses) and, as the baseline in the same run, the same requests in the full form (every Node object
in the body, nodeCacheCapable: false). Prints p50/p99 per form and their ratio, with the machine.
Then: a normal bind's latency while 8 binds with 10 MB bodies arrive at once, against the same bind
alone; and the cache's memory at `--memory-nodes` nodes (tracemalloc, the cache and its views).
Bounded loops, loopback only, no Kubernetes API: the cache is filled directly.

    .venv/bin/python bench/bench_extender.py [--nodes 1000] [--iterations 200] [--memory-nodes 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import statistics
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from machine_info import describe  # bench/machine_info.py

from stretto.scheduler.cluster_cache import ClusterCache, node_capacity
from stretto.scheduler.demand import pod_demand
from stretto.scheduler.extender import Extender
from stretto.scheduler.metrics import ExtenderMetrics
from stretto.scheduler.server import build_app
from stretto.scheduler.testing import RecordingBinder, make_node, make_pod


def build_cache(n_nodes: int, seed: int) -> tuple[ClusterCache, list[dict[str, Any]]]:
    """n nodes of 8 GPUs, 96 CPUs, 768Gi; about 60% partly booked with 1..7 GPUs of running pods."""
    rng = random.Random(seed)
    nodes = [make_node(f"gpu-{i:04d}", gpus=8, cpu="96", memory="768Gi") for i in range(n_nodes)]
    cache = ClusterCache()
    cache.replace_nodes(node_capacity(n) for n in nodes)
    for node in nodes:
        if rng.random() < 0.6:
            gpus = rng.randint(1, 7)
            pod = make_pod(f"busy-{node['metadata']['name']}", gpus=gpus, cpu=str(12 * gpus),
                           memory=f"{96 * gpus}Gi")
            cache.reserve(pod_demand(pod), node["metadata"]["name"])
    return cache, nodes


class ServerThread:
    """The extender's aiohttp app on 127.0.0.1:0 in its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self.port = 0
        self._thread = threading.Thread(target=self._run, name="bench-extender", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(self._app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def __enter__(self) -> ServerThread:
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the extender did not start")
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def post(conn: http.client.HTTPConnection, path: str, body: bytes) -> Any:
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{path}: HTTP {response.status}")
    return json.loads(data)


def measure(port: int, body: bytes, iterations: int, warmup: int) -> list[float]:
    """Seconds per filter request, answered with at least one node."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times: list[float] = []
    try:
        for i in range(warmup + iterations):
            t0 = time.perf_counter()
            filtered = post(conn, "/filter", body)
            t1 = time.perf_counter()
            if filtered["Error"] or not (filtered["NodeNames"] or (filtered["Nodes"] or {}).get("items")):
                raise RuntimeError(f"unexpected answer: {filtered['Error']!r}")
            if i >= warmup:
                times.append(t1 - t0)
    finally:
        conn.close()
    return times


def timed_bind(port: int, body: bytes) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        started = time.perf_counter()
        post(conn, "/bind", body)
        return time.perf_counter() - started
    finally:
        conn.close()


def bind_beside_oversized(port: int, binder: RecordingBinder, free_nodes: list[str], rounds: int = 5
                          ) -> tuple[float, float]:
    """(median seconds of a normal bind alone, with 8 oversized binds sent at the same moment); each normal
    bind goes to its own node of `free_nodes`, so every one of them succeeds."""
    targets = iter(free_nodes)
    huge = json.dumps({"PodName": "p" * 10 * 2**20, "PodNamespace": "bench", "PodUID": "u", "Node": "gpu-0000"})
    alone, beside = [], []
    for i in range(rounds):
        for label, out in (("alone", alone), ("beside", beside)):
            pod = binder.add(make_pod(f"normal-{label}-{i}", namespace="bench", gpus=1))
            body = json.dumps({"PodName": pod["metadata"]["name"], "PodNamespace": "bench",
                               "PodUID": pod["metadata"]["uid"], "Node": next(targets)}).encode()
            if label == "alone":
                out.append(timed_bind(port, body))
                continue
            with ThreadPoolExecutor(max_workers=9) as pool:
                flood = [pool.submit(timed_bind, port, huge.encode()) for _ in range(8)]
                out.append(pool.submit(timed_bind, port, body).result())
                for future in flood:
                    future.result()
    return statistics.median(alone), statistics.median(beside)


def cache_memory_mib(n_nodes: int, seed: int) -> float:
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cache, nodes = build_cache(n_nodes, seed)
    del nodes
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert cache.node_count() == n_nodes
    return used / 2**20


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--iterations", type=int, default=200,
                        help="measured filter requests per form")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--memory-nodes", type=int, default=5000)
    args = parser.parse_args()

    cache, nodes = build_cache(args.nodes, args.seed)
    metrics = ExtenderMetrics()
    binder = RecordingBinder()
    extender = Extender(cache=cache, binder=binder, metrics=metrics)
    app = build_app(extender, metrics=metrics, ready=lambda: True)
    pod = make_pod("tj1-worker-0", namespace="bench", gpus=2, cpu="16", memory="128Gi")
    names = [n["metadata"]["name"] for n in nodes]
    by_names = json.dumps({"Pod": pod, "Nodes": None, "NodeNames": names}).encode()
    full_form = {"Pod": pod, "Nodes": {"metadata": {}, "items": nodes}, "NodeNames": None}
    by_objects = json.dumps(full_form).encode()

    print(f"machine: {describe()}")
    free = sum(1 for v in cache.snapshot().values() if v.free_whole_gpus >= 2)
    print(f"cluster: {args.nodes} fake nodes x 8 GPUs, 96 CPUs, 768Gi; {free} with >= 2 GPUs free; "
          f"pod asks 2 GPUs, 16 CPUs, 128Gi; {args.iterations} filters per form after {args.warmup} warm-up")
    print(f"request bodies: node names {len(by_names) / 1024:.0f} KiB, full Node objects "
          f"{len(by_objects) / 1024:.0f} KiB")
    results = {}
    with ServerThread(app) as server:
        forms = (("nodeCacheCapable (names)", by_names), ("full Node objects (baseline)", by_objects))
        for form, body in forms:
            results[form] = measure(server.port, body, args.iterations, args.warmup)
        free_nodes = [name for name, view in cache.snapshot().items() if view.free_whole_gpus >= 1]
        binds_before = len(binder.bound)
        alone, beside = bind_beside_oversized(server.port, binder, free_nodes)
        assert len(binder.bound) - binds_before == 10, "a normal bind was refused"

    print(f"{'form':30} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for form, values in results.items():
        print(f"{form:30} {pct(values, 50) * 1e3:8.2f} {pct(values, 99) * 1e3:8.2f} "
              f"{statistics.fmean(values) * 1e3:8.2f}")
    named, full = results.values()
    p50, p99 = pct(named, 50), pct(named, 99)
    print(f"filter (nodeCacheCapable): p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms; "
          f"baseline/ours: p50 {pct(full, 50) / p50:.1f}x, p99 {pct(full, 99) / p99:.1f}x")
    print(f"a normal bind: {alone * 1e3:.1f} ms alone, {beside * 1e3:.1f} ms beside 8 binds of 10 MB sent at once "
          f"(median of 5; ratio {beside / alone:.1f}x)")
    print(f"cache memory at {args.memory_nodes} nodes x 8 GPUs (60% partly booked): "
          f"{cache_memory_mib(args.memory_nodes, args.seed):.1f} MiB, against "
          f"{cache_memory_mib(args.nodes, args.seed):.1f} MiB at {args.nodes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
