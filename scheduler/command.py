"""`stretto extender`: run the scheduler extender until interrupted."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from .binder import KubePodBinder
from .cluster_cache import ClusterCache
from .extender import Extender
from .kube_api import KubeAPI, load_api_client
from .metrics import ExtenderMetrics
from .pending_pods import PendingPods
from .server import build_app
from .watch import CacheFeeder

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
BIND_CALL_TIMEOUT_S = 3.0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "extender",
        help="run the kube-scheduler extender (filter, bind; GPU device ledger)",
        description="Serve kube-scheduler's extender v1 protocol at "
        "http://HOST:PORT/{filter,bind}, with /healthz, /readyz and /metrics.",
    )
    parser.add_argument("--kubeconfig", default=None,
                        help="kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(func=run)


def pod_uids_on_node(api: KubeAPI, node: str) -> set[str]:
    items, _ = api.list_all("/api/v1/pods", query=[("fieldSelector", f"spec.nodeName={node}")])
    return {item["metadata"]["uid"] for item in items}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(args, "log_level", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = KubeAPI(load_api_client(args.kubeconfig))
    # Binds answer within kube-scheduler's httpTimeout (10 s): at most three calls (read the pod, the
    # Binding, a read to resolve an unknown outcome) of BIND_CALL_TIMEOUT_S each, never retried unseen.
    bind_api = KubeAPI(load_api_client(args.kubeconfig, retries=0), timeout_s=BIND_CALL_TIMEOUT_S)
    cache = ClusterCache()
    pending = PendingPods()
    feeder = CacheFeeder(api, cache, pending=pending)
    metrics = ExtenderMetrics()
    metrics.watch_cache(nodes=cache.node_count, gpus_in_use=cache.booked_gpus)
    extender = Extender(cache=cache, binder=KubePodBinder(bind_api), metrics=metrics, ready=lambda: feeder.synced,
                        pods_on_node=lambda node: pod_uids_on_node(bind_api, node), pending=pending)
    app = build_app(extender, metrics=metrics, ready=lambda: feeder.synced)
    feeder.start()
    try:
        web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)
    finally:
        feeder.stop()
    return 0
