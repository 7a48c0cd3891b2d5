"""`stretto demo`: a workload through Stretto on a local control plane, live, then judged like `stretto simulate`.

Brings the local control plane up (building it the first time), starts Stretto's extender, operator and
the training emulator as components of the dev cluster, and plays the demo workload
(manifests/demo/workload.jsonl: rigid, elastic, GNS and Accordion jobs) in compressed time: each job is
applied at its arrival time, the operator runs its rounds, the emulator trains the Running workers. A
live table follows every job (phase, workers, GPUs, progress, ρ). At the end the same workload goes
through the simulator with the same plugins and round length, and both runs are printed with
`stretto simulate`'s metrics table, their ratios, and plots under --out.

`--examples DIR` instead applies the TrainingJobs in DIR (e.g. manifests/examples) and shows where each
worker lands until all run.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig
from stretto.devcluster.binaries import BuildFailed, PrerequisiteMissing, build_binaries
from stretto.devcluster.cluster import ClusterError, ClusterState, DevCluster
from stretto.devcluster.demo_workload import DEMO_WORKLOAD, Compression, load, nodes, simulate
from stretto.devcluster.live_run import JobFailed, LiveRun
from stretto.devcluster.rest import ApiError, RestClient
from stretto.devcluster.stretto_stack import StackSettings, start_all
from stretto.sim.metrics import Summary, rhos, summarise
from stretto.sim.simulator import SimulationResult
from stretto.sim.workloads import WorkloadError

DEMO_NAMESPACE = "stretto-demo"
console = Console()


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run Stretto on a local control plane with fake GPU nodes")
    parser.add_argument("--run-dir", type=Path, default=None, help="dev cluster run directory")
    parser.add_argument("--nodes", type=int, default=4)
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--workload", type=Path, default=DEMO_WORKLOAD,
                        help="JSON-lines workload (stretto.sim.workloads format); times in training seconds")
    parser.add_argument("--examples", type=Path, default=None,
                        help="instead of the workload: apply the TrainingJob YAML files in this directory "
                        "(e.g. manifests/examples) and show worker placement until all run")
    parser.add_argument("--round-seconds", type=float, default=3, help="scheduling round, wall seconds")
    parser.add_argument("--time-scale", type=float, default=30,
                        help="training seconds per wall second (the emulator's compression)")
    parser.add_argument("--checkpoint-notice", type=float, default=1.0,
                        help="wall seconds a shrinking worker gets to checkpoint")
    parser.add_argument("--sim-restore-overhead", type=float, default=None,
                        help="the simulator's restore overhead, training seconds (default: the live run's "
                        "median start latency of the jobs that found free GPUs, scaled)")
    parser.add_argument("--sim-resize-overhead", type=float, default=None,
                        help="the simulator's elastic-restart cost per resize, training seconds (default: the live "
                        "run's mean pause of a job while it was resized, scaled)")
    parser.add_argument("--policy", default=RoundConfig().policy.name,
                        help="the round's policy, live and simulated (default: the operator's, %(default)s)")
    parser.add_argument("--packer", default=RoundConfig().packer.name,
                        help="the round's packer, live and simulated (default: the operator's, %(default)s)")
    parser.add_argument("--timeout", type=float, default=900, help="wall seconds before giving up")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for results and plots")
    parser.set_defaults(func=run)


def round_config(args: argparse.Namespace) -> RoundConfig:
    """The one round both the live operator and the simulation run: the default, with the named plugins."""
    return RoundConfig(policy=PluginSpec(name=args.policy), packer=PluginSpec(name=args.packer))


def _progress(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


# -- the live view ---------------------------------------------------------------------------------

def _kind(record_job: Any) -> str:
    if record_job.adaptation.mode.value != "none":
        return record_job.adaptation.mode.value
    return "rigid" if record_job.workers.min == record_job.workers.max else "elastic"


def _bar(fraction: float, width: int = 6) -> str:
    filled = round(fraction * width)
    return "█" * filled + "·" * (width - filled) + f" {100 * fraction:3.0f}%"


def wrap_at_hyphens(name: str, width: int) -> str:
    """A long name broken after its hyphens into lines of at most `width` (a part longer than that stays whole)."""
    lines: list[str] = []
    for part in name.replace("-", "-\0").split("\0"):
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


JOB_COLUMN = 20  # with the other columns' widths, the live view fits 80 columns


def live_view(run: LiveRun) -> Table:
    """One row per job: its name over its kind and tenant, phase, workers (ready/planned, min-max), GPUs,
    progress and ρ; designed for 80 columns (long names break after a hyphen)."""
    records = list(run.records.values())
    done = sum(r.finished is not None for r in records)
    gpus = run.samples[-1].gpus if run.samples else 0
    wall = run.elapsed()
    title = (f"Stretto demo · wall {wall:5.0f} s · training {run.compression.training(wall) / 3600:4.2f} h · "
             f"{done}/{len(records)} Succeeded · {gpus}/{run.totals[0]} GPUs held")
    table = Table(title=title, title_justify="left")
    table.add_column("TrainingJob\n[dim]kind · tenant[/dim]", max_width=JOB_COLUMN)
    table.add_column("phase")
    for column in ("workers", "GPUs", "progress", "ρ"):
        table.add_column(column, justify="right", no_wrap=True)
    for record in records:
        job, status = record.job, record.status
        name = f"{wrap_at_hyphens(job.id, JOB_COLUMN)}\n[dim]{_kind(job)} · {job.tenant}[/dim]"
        if record.applied is None:
            wait = max(0.0, run.due(record) - wall)
            table.add_row(name, f"[dim]arrives\nin {wait:.0f} s[/dim]", "", "", "", "")
            continue
        phase = status.get("phase", "Pending")
        colour = {"Running": "green", "Succeeded": "blue", "Scaling": "yellow", "Failed": "red"}.get(phase, "white")
        planned = (status.get("allocation") or {}).get("plannedWorkers")
        workers = f"{status.get('readyWorkers', 0)}/{planned if planned is not None else '-'} " \
                  f"[dim]({job.workers.min}-{job.workers.max})[/dim]"
        rho = (status.get("prediction") or {}).get("rho")
        table.add_row(name, f"[{colour}]{phase}[/{colour}]", workers,
                      str((status.get("allocation") or {}).get("gpus", 0)), _bar(record.fraction_done),
                      "" if rho is None else f"{rho:.2f}")
    return table


# -- the comparison --------------------------------------------------------------------------------

def comparison_tables(rows: list[tuple[str, str, Summary]], reference: Summary, live: Summary,
                      config: RoundConfig) -> Group:
    from stretto.sim.command import summary_tables  # the very tables `stretto simulate` prints

    metrics = summary_tables(rows, config.predictor.name)
    metrics.renderables[0].title = (f"live run and simulation, same workload and round: {config.policy.name} × "
                                    f"{config.packer.name}, predictor {config.predictor.name} "
                                    "(times in training hours)")
    ratios = Table(title="live / simulated")
    for column in ("metric", "live", "simulated", "live / sim"):
        ratios.add_column(column, justify="left" if column == "metric" else "right")
    for name, attr in (("makespan h", "makespan_s"), ("avg JCT h", "avg_jct_s"), ("median JCT h", "median_jct_s"),
                       ("p99 JCT h", "p99_jct_s")):
        a, b = getattr(live, attr), getattr(reference, attr)
        ratios.add_row(name, f"{a / 3600:.3f}", f"{b / 3600:.3f}", f"{a / b:.3f}")
    return Group(metrics, ratios)


def write_results(out: Path, results: dict[str, SimulationResult], meta: dict[str, Any]) -> None:
    from stretto.sim.plots import write_plots

    out.mkdir(parents=True, exist_ok=True)
    records = []
    for label, result in results.items():
        records.append({"run": label, **asdict(summarise(result)), **meta})
        with (out / f"jobs_{label.split()[0]}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["job_id", "model", "gpus", "arrival_s", "first_start_s", "finish_s", "jct_s",
                             "isolated_s", "rho"])
            for o, rho in zip(result.outcomes, rhos(result), strict=True):
                writer.writerow([o.job_id, o.model, o.gpus, f"{o.arrival_s:.1f}", f"{o.first_start_s:.1f}",
                                 f"{o.finish_s:.1f}", f"{o.jct_s:.1f}", f"{o.isolated_s:.1f}", f"{rho:.4f}"])
    (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
    write_plots(results, out)


# -- the workload run ------------------------------------------------------------------------------

def clear_namespace(rest: RestClient, namespace: str, timeout: float = 120) -> None:
    """Delete the TrainingJobs a previous demo left in `namespace` and wait for their workers to go."""
    path = f"/apis/{contracts.API_VERSION}/namespaces/{namespace}/{contracts.TRAININGJOB_PLURAL}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if not rest.get(path).get("items"):
                return
            rest.request("DELETE", path)
            break
        except ApiError as error:
            if error.status == 404:
                return
            if error.status != 429 or time.monotonic() > deadline:  # 429: a new CRD's storage starting
                raise
            time.sleep(1)
    while time.monotonic() < deadline:
        if not rest.get(path).get("items") and not rest.get(f"/api/v1/namespaces/{namespace}/pods").get("items"):
            return
        time.sleep(0.5)
    raise ClusterError(f"the previous demo's jobs in {namespace} did not go away within {timeout:.0f}s")


def play(run: LiveRun, timeout: float, show: bool = True) -> None:
    """Apply the jobs on schedule and watch until every one has Succeeded (or time runs out)."""
    deadline = time.monotonic() + timeout
    with Live(console=console, refresh_per_second=4, transient=False, auto_refresh=False) as live:
        last_view = 0.0
        while not run.done:
            if time.monotonic() > deadline:
                raise ClusterError(f"not every job Succeeded within {timeout:.0f}s")
            try:
                run.step()
            except (ApiError, OSError) as error:  # the API server busy for a moment: the next step retries
                if isinstance(error, ApiError) and error.status < 429:
                    raise
            if show and time.monotonic() - last_view >= 0.5:
                live.update(live_view(run), refresh=True)
                last_view = time.monotonic()
            time.sleep(0.2)
        live.update(live_view(run), refresh=True)
    if not console.is_terminal:  # off a terminal rich leaves the last frame's line open: what follows would join it
        console.line()


def started_at_arrival(result: SimulationResult) -> set[str]:
    """The jobs a simulation starts in the round of their arrival (GPUs were free for them)."""
    return {o.job_id for o in result.outcomes if o.first_start_s - o.arrival_s < 1e-6}


def run_workload(cluster: DevCluster, state: ClusterState, args: argparse.Namespace) -> int:
    book = load_builtin_profiles()
    jobs = load(args.workload, book)
    compression = Compression(time_scale=args.time_scale, round_seconds=args.round_seconds)
    node_states = nodes(len(state.nodes), state.gpus_per_node)
    config = round_config(args)
    settings = StackSettings(compression, checkpoint_notice_seconds=args.checkpoint_notice, round_config=config)
    rest = cluster.rest(state)
    clear_namespace(rest, DEMO_NAMESPACE)
    start_all(cluster, state, settings, [DEMO_NAMESPACE], progress=_progress)
    reference = simulate(jobs, node_states=node_states, book=book, compression=compression, round_config=config)
    expected = max(o.finish_s for o in reference.outcomes) / compression.time_scale
    _progress(f"playing {len(jobs)} jobs from {args.workload} ({config.policy.name} × "
              f"{config.packer.name}, predictor {config.predictor.name}); "
              f"the simulator expects about {expected:.0f} wall seconds")
    run = LiveRun(rest, DEMO_NAMESPACE, jobs, compression, total_gpus=sum(n.gpus for n in node_states),
                  total_cpus=sum(n.cpus for n in node_states),
                  total_memory_gib=sum(n.memory_gib for n in node_states))
    play(run, args.timeout)
    latencies = run.start_latencies(started_at_arrival(reference))
    median_start = statistics.median(latencies) if latencies else 0.0
    overhead = args.sim_restore_overhead if args.sim_restore_overhead is not None \
        else compression.training(median_start)
    pauses = run.resize_pauses()
    mean_pause = statistics.fmean(pauses) if pauses else 0.0  # the total lost is what moves the JCTs
    resize = args.sim_resize_overhead if args.sim_resize_overhead is not None \
        else compression.training(mean_pause)
    calibrated = simulate(jobs, node_states=node_states, book=book, compression=compression,
                          restore_overhead_s=overhead, resize_overhead_s=resize, round_config=config)
    isolated = {o.job_id: o.isolated_s for o in reference.outcomes}
    live = run.result(isolated)
    results = {"live": live, "simulated": calibrated, "simulated-no-overhead": reference}
    summaries = {label: summarise(r) for label, r in results.items()}
    rows = [("live", "operator + emulator", summaries["live"]),
            ("simulated", f"restore {overhead:.0f} s,\nresize {resize:.0f} s", summaries["simulated"]),
            ("simulated", "restore 0 s", summaries["simulated-no-overhead"])]
    console.print(comparison_tables(rows, summaries["simulated"], summaries["live"], config))
    console.print(f"median start latency (applied → all workers Running, jobs that found free GPUs): "
                  f"{median_start:.2f} wall s "
                  f"= {compression.training(median_start):.0f} training s; one round = "
                  f"{compression.simulated_round_seconds:g} training s; mean resize pause {mean_pause:.2f} "
                  f"wall s over {len(pauses)} resizes = {resize:.0f} training s")
    meta = {"time_scale": compression.time_scale, "round_seconds_wall": compression.round_seconds,
            "checkpoint_notice_s_wall": settings.checkpoint_notice_seconds, "sim_restore_overhead_s": overhead,
            "sim_resize_overhead_s": resize, "mean_resize_pause_s_wall": mean_pause, "resizes": len(pauses),
            "median_start_latency_s_wall": median_start, "jobs": len(jobs), "workload": str(args.workload),
            "policy": config.policy.name, "packer": config.packer.name, "predictor": config.predictor.name}
    write_results(args.out, results, meta)
    console.print(f"wrote {args.out}/results.json, per-job CSVs and plots (jct_cdf.png, rho_cdf.png, "
                  "utilisation.png)")
    return 0


# -- the examples run (placement only) -------------------------------------------------------------

def _load_examples(directory: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(directory.glob("*.yaml")):
        documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    if not documents:
        raise ClusterError(f"no TrainingJob YAML found in {directory}")
    return documents


def _placement_table(rest: RestClient, jobs: list[dict[str, Any]]) -> tuple[Table, bool]:
    pods = rest.get(f"/api/v1/namespaces/{DEMO_NAMESPACE}/pods")["items"]
    statuses = {j["metadata"]["name"]: j.get("status") or {} for j in rest.get(
        f"/apis/{contracts.API_VERSION}/namespaces/{DEMO_NAMESPACE}/{contracts.TRAININGJOB_PLURAL}")["items"]}
    table = Table(title=f"Stretto demo: worker placement ({time.strftime('%H:%M:%S')})")
    for column in ("TrainingJob", "phase", "planned", "worker", "node", "GPU ids", "pod phase"):
        table.add_column(column)
    expected = running = 0
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
                          pod["metadata"].get("annotations", {}).get(contracts.ANNOTATION_GPU_IDS, "-"), pod_phase)
    return table, all_planned and running == expected and expected > 0


def run_examples(cluster: DevCluster, state: ClusterState, args: argparse.Namespace) -> int:
    compression = Compression(time_scale=args.time_scale, round_seconds=args.round_seconds)
    rest = cluster.rest(state)
    clear_namespace(rest, DEMO_NAMESPACE)
    settings = StackSettings(compression, checkpoint_notice_seconds=args.checkpoint_notice,
                             round_config=round_config(args))
    start_all(cluster, state, settings, [DEMO_NAMESPACE], progress=_progress)
    jobs = _load_examples(args.examples)
    rest.create("/api/v1/namespaces", {"metadata": {"name": DEMO_NAMESPACE}})
    for job in jobs:
        rest.create(f"/apis/{contracts.API_VERSION}/namespaces/{DEMO_NAMESPACE}/{contracts.TRAININGJOB_PLURAL}", job)
        _progress(f"applied TrainingJob {job['metadata']['name']}")
    deadline = time.monotonic() + args.timeout
    done = False
    with Live(console=console, refresh_per_second=2) as live:
        while time.monotonic() < deadline and not done:
            table, done = _placement_table(rest, jobs)
            live.update(table)
            if not done:
                time.sleep(1)
    if not done:
        raise ClusterError(f"not every worker was Running after {args.timeout:.0f}s")
    console.print("\n[green]All workers are Running.[/green]")
    return 0


def run(args: argparse.Namespace) -> int:
    cluster = DevCluster(args.run_dir)
    try:
        state = cluster.up(args.nodes, args.gpus_per_node, progress=_progress)
        play_it = run_examples if args.examples is not None else run_workload
        code = play_it(cluster, state, args)
    except (PrerequisiteMissing, BuildFailed, ClusterError, WorkloadError, JobFailed) as error:
        console.print(f"[red]error:[/red] {error}")
        console.print(f"Logs: {cluster.log_dir}. To stop the cluster: make demo-down   (or: stretto dev-cluster down)")
        return 1
    console.print("\nThe cluster keeps running. To look around:")
    kubectl = "kubectl" if shutil.which("kubectl") else str(build_binaries(lambda _msg: None).kubectl)
    console.print(f"  export KUBECONFIG={state.kubeconfig}")
    console.print(f"  {kubectl} get trainingjobs -n {DEMO_NAMESPACE}        # or: get tj -A")
    console.print(f"  {kubectl} get pods -n {DEMO_NAMESPACE} -o wide")
    console.print(f"  {kubectl} get configmap -n stretto-system stretto-config -o yaml   # round length, plugins")
    console.print(f"Logs: {cluster.log_dir}")
    run_dir = f" --run-dir {args.run_dir}" if args.run_dir else ""
    console.print(f"To stop it: make demo-down   (or: stretto dev-cluster{run_dir} down)")
    return code
