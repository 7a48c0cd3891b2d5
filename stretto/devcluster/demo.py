"""`stretto demo`: the dev cluster, Stretto's extender and operator, and example TrainingJobs, live.

Brings the local control plane up (building it the first time), starts the extender and operator as
background processes of the dev cluster, applies the TrainingJobs in manifests/examples/, and shows
where each worker lands (node, GPU ids) until all are Running.
"""

from __future__ import annotations

import argparse
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

from stretto import contracts
from stretto.devcluster import processes
from stretto.devcluster.binaries import BuildFailed, PrerequisiteMissing, build_binaries
from stretto.devcluster.cluster import ClusterError, DevCluster
from stretto.devcluster.rest import RestClient

DEMO_NAMESPACE = "stretto-demo"
EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
console = Console()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run Stretto on a local control plane with fake GPU nodes")
    parser.add_argument("--run-dir", type=Path, default=None, help="dev cluster run directory")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--examples", type=Path, default=EXAMPLES, help="directory of TrainingJob YAML files")
    parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for all workers")
    parser.add_argument("--round-seconds", type=float, default=5, help="scheduling round length (compressed time)")
    parser.set_defaults(func=run)


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ClusterError(f"{url} did not answer within {timeout:.0f}s")


def _load_examples(directory: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(directory.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    if not documents:
        raise ClusterError(f"no TrainingJob YAML found in {directory}")
    return documents


def _apply(rest: RestClient, jobs: list[dict[str, Any]]) -> None:
    rest.create("/api/v1/namespaces", {"metadata": {"name": DEMO_NAMESPACE}})
    path = f"/apis/{contracts.API_VERSION}/namespaces/{DEMO_NAMESPACE}/{contracts.TRAININGJOB_PLURAL}"
    for job in jobs:
        rest.create(path, job)
        _progress(f"applied TrainingJob {job['metadata']['name']}")


def _placement_table(rest: RestClient, jobs: list[dict[str, Any]]) -> tuple[Table, bool]:
    pods = rest.get(f"/api/v1/namespaces/{DEMO_NAMESPACE}/pods")["items"]
    statuses = {j["metadata"]["name"]: j.get("status") or {} for j in rest.get(
        f"/apis/{contracts.API_VERSION}/namespaces/{DEMO_NAMESPACE}/{contracts.TRAININGJOB_PLURAL}")["items"]}
    table = Table(title=f"Stretto demo: worker placement ({time.strftime('%H:%M:%S')})")
    for column in ("TrainingJob", "phase", "planned", "worker", "node", "GPU ids", "pod phase"):
        table.add_column(column)
    expected = 0
    running = 0
    all_planned = True
    for job in jobs:
        name = job["metadata"]["name"]
        planned = (statuses.get(name, {}).get("allocation") or {}).get("plannedWorkers")
        expected += planned if planned is not None else job["spec"]["workers"]["min"]
        all_planned &= planned is not None
        mine = sorted((p for p in pods if p["metadata"].get("labels", {}).get(contracts.LABEL_JOB) == name),
                      key=lambda p: int(p["metadata"]["labels"].get(contracts.LABEL_WORKER_INDEX, 0)))
        phase = statuses.get(name, {}).get("phase", "-")
        planned_text = f"{planned}/{job['spec']['workers']['max']}" if planned is not None else "-"
        if not mine:
            table.add_row(name, phase, planned_text, "-", "-", "-", "not created yet")
        for pod in mine:
            pod_phase = pod.get("status", {}).get("phase", "?")
            running += pod_phase == "Running"
            table.add_row(name, phase, planned_text, pod["metadata"]["labels"].get(contracts.LABEL_WORKER_INDEX, "?"),
                          pod["spec"].get("nodeName") or "(pending)",
                          pod["metadata"].get("annotations", {}).get(contracts.ANNOTATION_GPU_IDS, "-"),
                          pod_phase)
    return table, all_planned and running == expected and expected > 0


def run(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.run_dir)
    try:
        state = cluster.up(args.nodes, args.gpus_per_node, progress=_progress)
        cluster.start_component("extender", ["extender", "--host", "127.0.0.1", "--port", str(state.extender_port)])
        _wait_http(f"http://127.0.0.1:{state.extender_port}/readyz", 60)
        _progress(f"Stretto extender ready on 127.0.0.1:{state.extender_port}")
        progress_port = processes.free_port()
        cluster.start_component("operator", ["operator", "--progress-host", "127.0.0.1", "--progress-port",
                                             str(progress_port), "--progress-url",
                                             f"http://127.0.0.1:{progress_port}"],
                                env={"STRETTO_ROUND_SECONDS": str(args.round_seconds)})
        _progress("Stretto operator started")
        jobs = _load_examples(args.examples)
        rest = cluster.rest(state)
        _apply(rest, jobs)
        deadline = time.monotonic() + args.timeout
        done = False
        with Live(console=console, refresh_per_second=2) as live:
            while time.monotonic() < deadline and not done:
                table, done = _placement_table(rest, jobs)
                live.update(table)
                if not done:
                    time.sleep(1)
    except (PrerequisiteMissing, BuildFailed, ClusterError) as error:
        console.print(f"[red]error:[/red] {error}")
        return 1
    if not done:
        console.print(f"[red]not every worker was Running after {args.timeout:.0f}s[/red]; "
                      f"logs: {cluster.log_dir}")
        return 1
    console.print("\n[green]All workers are Running.[/green] The cluster keeps running. To look around:")
    kubectl = "kubectl" if shutil.which("kubectl") else str(build_binaries(lambda _msg: None).kubectl)
    console.print(f"  export KUBECONFIG={state.kubeconfig}")
    console.print(f"  {kubectl} get trainingjobs -n {DEMO_NAMESPACE}        # or: get tj -A")
    console.print(f"  {kubectl} get pods -n {DEMO_NAMESPACE} -o wide")
    console.print(f"Logs: {cluster.log_dir}")
    console.print("To stop it: make demo-down   (or: stretto dev-cluster down)")
    return 0
