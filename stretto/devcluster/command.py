"""`stretto dev-cluster up|down|status|kubeconfig`: the local control plane from the command line."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from stretto.devcluster.binaries import BuildFailed, PrerequisiteMissing, build_binaries
from stretto.devcluster.cluster import ClusterError, DevCluster
from stretto.devcluster.go_tools import CHART_TOOLS, HELM_VERSION, build_tool

console = Console(stderr=True)


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dev-cluster", help="a local control plane with fake GPU nodes",
                                   description="A real local Kubernetes control plane (etcd, kube-apiserver, "
                                   "kube-controller-manager, kube-scheduler with Stretto's extender, kwok "
                                   "fake GPU nodes), built from pinned Go modules on first use.")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="where logs, PKI, kubeconfig and state live "
                        "(default $STRETTO_DEV_CLUSTER_DIR or ~/.local/state/stretto/dev-cluster)")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    up = actions.add_parser("up", help="build (first time) and start the control plane")
    up.add_argument("--nodes", type=int, default=4, help="fake GPU nodes (default 4)")
    up.add_argument("--gpus-per-node", type=int, default=8, help="nvidia.com/gpu per node (default 8)")
    actions.add_parser("down", help="stop every process of the dev cluster")
    actions.add_parser("status", help="print the state of the dev cluster as JSON")
    actions.add_parser("kubeconfig", help="print the path of the admin kubeconfig")
    build = actions.add_parser("build", help="only build (or find cached) control-plane binaries")
    build.add_argument("--chart-tools", action="store_true",
                       help=f"also helm {HELM_VERSION} and kind-config-check, which the chart tests use")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.run_dir)
    try:
        if args.action == "up":
            if args.nodes < 1 or args.gpus_per_node < 0:
                console.print("[red]--nodes must be >= 1 and --gpus-per-node >= 0[/red]")
                return 2
            state = cluster.up(args.nodes, args.gpus_per_node, progress=_progress)
            console.print(f"export KUBECONFIG={state.kubeconfig}")
        elif args.action == "down":
            cluster.down(progress=_progress)
        elif args.action == "status":
            status = cluster.status()
            print(json.dumps(status, indent=2))
            return 0 if status["running"] else 1
        elif args.action == "kubeconfig":
            state = cluster.load_state()
            if state is None:
                console.print(f"[red]no dev cluster in {cluster.run_dir}[/red]")
                return 1
            print(state.kubeconfig)
        elif args.action == "build":
            binaries = build_binaries(_progress)
            print(binaries.directory)
            if args.chart_tools:
                for tool in CHART_TOOLS:
                    print(build_tool(tool, _progress))
    except (PrerequisiteMissing, BuildFailed, ClusterError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 1
    return 0
