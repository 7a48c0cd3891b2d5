"""Prometheus metrics and the health endpoint of the node daemon.

One collector renders the daemon's latest report at scrape time: per GPU (utilization, memory)
and per container (utilization, cap, memory used against its cap, time throttled, OOM refusals).
``/healthz`` answers 200 while the controller ticks, 503 when it has stalled.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from .daemon import DaemonReport
from .nvml_backend import GpuSample

CONTAINER_LABELS = ["namespace", "pod", "container", "pod_uid"]


class DaemonCollector(Collector):
    def __init__(self, report: Callable[[], DaemonReport]) -> None:
        self._report = report

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        r = self._report()
        g_util = GaugeMetricFamily("stretto_gpu_utilization_percent", "GPU utilization (NVML)", labels=["gpu", "name"])
        g_used = GaugeMetricFamily("stretto_gpu_memory_used_bytes", "GPU memory in use", labels=["gpu", "name"])
        g_total = GaugeMetricFamily("stretto_gpu_memory_total_bytes", "GPU memory", labels=["gpu", "name"])
        for g in r.gpus:
            if isinstance(g, GpuSample):
                labels = [str(g.index), g.name]
                g_util.add_metric(labels, g.utilization_pct)
                g_used.add_metric(labels, g.memory_used)
                g_total.add_metric(labels, g.memory_total)
        yield from (g_util, g_used, g_total)
        c_util = GaugeMetricFamily("stretto_container_gpu_utilization_percent",
                                   "GPU utilization of the container's processes", labels=CONTAINER_LABELS)
        c_cap = GaugeMetricFamily("stretto_container_gpu_utilization_cap_percent",
                                  "utilization ceiling in force now", labels=CONTAINER_LABELS)
        c_min = GaugeMetricFamily("stretto_container_gpu_utilization_min_percent", "guaranteed utilization",
                                  labels=CONTAINER_LABELS)
        c_max = GaugeMetricFamily("stretto_container_gpu_utilization_max_percent", "maximum utilization",
                                  labels=CONTAINER_LABELS)
        c_mem = GaugeMetricFamily("stretto_container_gpu_memory_used_bytes", "device memory charged to the container",
                                  labels=CONTAINER_LABELS)
        c_lim = GaugeMetricFamily("stretto_container_gpu_memory_limit_bytes", "per-device memory cap (0: none)",
                                  labels=CONTAINER_LABELS)
        c_thr = CounterMetricFamily("stretto_container_gpu_throttled_seconds",
                                    "time kernel launches waited for tokens", labels=CONTAINER_LABELS)
        c_oom = CounterMetricFamily("stretto_container_gpu_oom_refusals",
                                    "allocations refused for the memory cap", labels=CONTAINER_LABELS)
        for c in r.containers:
            s = c.share
            labels = [s.namespace, s.pod, s.container, s.pod_uid]
            c_util.add_metric(labels, c.util_pct)
            c_cap.add_metric(labels, c.cap_pct)
            c_min.add_metric(labels, s.min_pct)
            c_max.add_metric(labels, s.max_pct)
            c_mem.add_metric(labels, c.memory_used)
            c_lim.add_metric(labels, s.memory_bytes or 0)
            c_thr.add_metric(labels, c.throttled_seconds)
            c_oom.add_metric(labels, c.oom_events)
        yield from (c_util, c_cap, c_min, c_max, c_mem, c_lim, c_thr, c_oom)
        yield GaugeMetricFamily("stretto_node_daemon_last_tick_age_seconds", "seconds since the last controller tick",
                                value=max(0.0, time.monotonic() - r.last_tick_monotonic))


def build_registry(report: Callable[[], DaemonReport]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(report))
    return registry


def serve(port: int, registry: CollectorRegistry, healthy: Callable[[], bool],
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on a daemon thread; returns the server (call shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, status, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif self.path.startswith("/healthz"):
                ok = healthy()
                body, status, ctype = (b"ok\n" if ok else b"stalled\n"), (200 if ok else 503), "text/plain"
            else:
                body, status, ctype = b"not found\n", 404, "text/plain"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="stretto-metrics", daemon=True).start()
    return server
