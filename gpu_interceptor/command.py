"""``stretto node-daemon``: the CLI entry of the GPU node daemon.

The lead's stretto/cli.py calls ``register(subparsers)``; ``python -m stretto.gpu_interceptor``
runs the same subcommand on its own. Shares come from the Kubernetes pods bound to ``--node``
or, without Kubernetes, from ``--shares-file`` (re-read when it changes).
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

from stretto import contracts

from . import daemon as daemon_mod
from . import metrics, pids
from .controller import ControllerArgs
from .shares import shares_from_file

log = logging.getLogger("stretto.gpu_interceptor")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("node-daemon", help="enforce GPU shares on this node (memory cap, min/max utilization)")
    p.add_argument("--node", help="this node's name (pods with spec.nodeName=NODE are watched)")
    p.add_argument("--control-dir", default=contracts.HOST_CONTROL_ROOT, type=Path,
                   help=f"host directory of the per-container control files (default {contracts.HOST_CONTROL_ROOT})")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then ~/.kube/config)")
    p.add_argument("--shares-file", type=Path, help="JSON/YAML list of container shares instead of Kubernetes")
    p.add_argument("--metrics-port", type=int, default=9400, help="port of /metrics and /healthz (0: off)")
    p.add_argument("--interval", type=float, default=0.1, help="controller period, seconds")
    p.add_argument("--stale-after", type=float, default=30.0,
                   help="seconds without a daemon heartbeat before shims fall back to the minimum share")
    p.add_argument("--initial-tokens-per-percent", type=float, default=2000.0,
                   help="first rate guess for a new container, tokens (thread blocks) per second per percent")
    p.add_argument("--pid-mapping", choices=["cgroup", "ledger"], default=None,
                   help="map GPU pids to containers by /proc cgroups (Kubernetes) or by the shims' ledgers "
                        "(same pid namespace); default: cgroup with --node, ledger with --shares-file")
    p.set_defaults(func=run)


def _shares_file_loop(path: Path, daemon: daemon_mod.NodeDaemon, stop: threading.Event) -> None:
    mtime = None
    while not stop.is_set():
        try:
            m = path.stat().st_mtime_ns
            if m != mtime:
                daemon.set_containers(shares_from_file(path))
                mtime = m
        except (OSError, ValueError) as e:
            log.warning("cannot read %s: %s", path, e)
        stop.wait(0.5)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if not args.node and not args.shares_file:
        log.error("node-daemon needs --node (Kubernetes) or --shares-file")
        return 2
    from .nvml_backend import NvmlBackend  # NVML only when the daemon really runs

    try:
        backend = NvmlBackend()
    except Exception as e:
        log.error("NVML is not available: %s", e)
        return 1
    mapping = args.pid_mapping or ("ledger" if args.shares_file else "cgroup")
    resolver = pids.resolve_by_ledger if mapping == "ledger" else pids.make_cgroup_resolver()
    settings = daemon_mod.DaemonArgs(
        interval_s=args.interval, stale_after_ms=int(args.stale_after * 1000),
        controller=ControllerArgs(initial_tokens_per_percent=args.initial_tokens_per_percent),
    )
    args.control_dir.mkdir(parents=True, exist_ok=True)
    node = daemon_mod.NodeDaemon(control_root=args.control_dir, backend=backend, args=settings, resolve_pids=resolver)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    if args.shares_file:
        source = threading.Thread(target=_shares_file_loop, args=(args.shares_file, node, stop), daemon=True)
    else:
        from . import kube_watch

        api = kube_watch.load_kube_config(args.kubeconfig)
        source = threading.Thread(target=kube_watch.watch_node_pods, args=(api, args.node, node.set_containers, stop),
                                  daemon=True, name="stretto-pod-watch")
    source.start()
    server = None
    if args.metrics_port:
        def healthy() -> bool:
            return time.monotonic() - node.report.last_tick_monotonic < max(5.0, 20 * settings.interval_s)

        server = metrics.serve(args.metrics_port, metrics.build_registry(lambda: node.report), healthy)
    log.info("node daemon running: control dir %s, %d GPU(s)", args.control_dir, backend.device_count)
    try:
        node.run(stop)
    finally:
        if server is not None:
            server.shutdown()
        backend.close()
    return 0
