"""`stretto simulate`: run every policy × packer combination on a workload and compare them.

Writes results.json, one CSV of per-job outcomes per combination, and PNG plots to --out.
Peer formats bring their simulators' conventions unless overridden: Synergy's CSV rounds of
300 s with completions counted at the round end; Shockwave's traces rounds of 120 s and a 20 s
restore overhead; Pollux's workload CSVs rounds of 60 s, 30 s to restore, resize or move (every
allocation change restarts a job there); and the peer's profiles are read from the file's folder
(Pollux's: the traces folder beside workloads/).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rich.console import Console, Group
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stretto.core.profile_loading import load_profile_book
from stretto.core.profiles import ProfileBook
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import ClusterSpecError, parse_cluster_spec
from stretto.sim.combined_workload import CombinedWorkloadArgs, generate_combined, load_combined_book
from stretto.sim.elastic_workload import ElasticWorkloadArgs, generate_elastic
from stretto.sim.generators import GENERATOR_PREFIXES, generate_from_spec
from stretto.sim.learned_profiles import JOB_MODEL_VIEWS
from stretto.sim.metrics import Summary, rhos, shockwave_rhos, summarise
from stretto.sim.pollux_traces import POLLUX_JOB_KINDS, PolluxJobs, default_traces, is_pollux_workload
from stretto.sim.simulator import SimulationConfig, SimulationResult, Simulator
from stretto.sim.workloads import WorkloadError, WorkloadJob, read_workload


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("simulate", help="simulate policies × packers on a workload and compare them")
    p.add_argument(
        "--workload",
        required=True,
        help="JSON-lines workload, Synergy or Pollux .csv, Shockwave .trace/.jobs.jsonl, or a generator: "
        "synergy:jobs=100,jobs_per_hour=9 | shockwave:jobs=120,mean_interarrival_s=40 | "
        "combined:jobs=120 (Shockwave-style jobs with Synergy's CPU/memory sensitivity; --profiles: peers folder) | "
        "elastic:jobs=40 (elastic ranges, 1-8 GPUs per worker, GNS/Accordion, tenants; on the combined profiles)",
    )
    p.add_argument("--cluster", required=True, help="NxG[,cpus=C][,memory=M] (e.g. 4x8,cpus=24,memory=500Gi) or a file")
    p.add_argument("--policy", default="fifo", help="policy name(s), comma-separated")
    p.add_argument("--packer", default="proportional", help="packer name(s), comma-separated")
    p.add_argument(
        "--predictor",
        default=RoundConfig().predictor.name,
        help="predictor name (default: the operator's, %(default)s); planned-schedule is an oracle (it reads the "
        "simulated jobs' future batch sizes) and its rows say so",
    )
    p.add_argument("--policy-args", default="{}", metavar="JSON",
                   help='arguments for every policy given, e.g. \'{"planner": "market"}\'')
    p.add_argument("--packer-args", default="{}", metavar="JSON",
                   help='arguments for every packer given, e.g. \'{"share_gpus": true}\'')
    p.add_argument(
        "--profiles",
        type=Path,
        default=None,
        help="profile file or folder (default: the peer's beside a peer trace, else the built-ins; "
        "for combined: the peers' folder, default ../shared/data/peers)",
    )
    p.add_argument(
        "--round-seconds",
        type=float,
        default=None,
        help="round length (default 300; 120 for Shockwave traces, 60 for Pollux workloads)",
    )
    p.add_argument(
        "--restore-overhead",
        type=float,
        default=None,
        help="seconds a job loses when it restarts (default 0; 20 for Shockwave traces, 30 for Pollux workloads, "
        "where a move costs it too)",
    )
    p.add_argument(
        "--resize-overhead",
        type=float,
        default=None,
        help="seconds a job loses when its GPU count changes (an elastic restart; default 20 for elastic:, 30 for "
        "Pollux workloads, else 0)",
    )
    p.add_argument(
        "--pollux-jobs",
        choices=POLLUX_JOB_KINDS,
        default="tuned",
        help="Pollux workloads: rigid at the TunedJobs GPUs and batch (tuned), elastic at that batch as Pollux runs "
        "Optimus (elastic), or goodput jobs whose batch the scheduler picks in Pollux's range (goodput)",
    )
    p.add_argument(
        "--move-costs-restore",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a job moved to other nodes or GPUs pays the restore overhead (default: only for Pollux workloads)",
    )
    p.add_argument(
        "--finish-at-round-end",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="count completions at the end of their round (default: only for Synergy traces)",
    )
    p.add_argument(
        "--workers-can-move",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="re-place every job each round, as the peers' simulators do (default); --no-workers-can-move keeps "
        "running workers where they are, as a live cluster does",
    )
    p.add_argument(
        "--batch-switch",
        choices=("epoch", "round"),
        default=None,
        help="when a job takes its next batch size: at the epoch boundary, or after its next round as Shockwave's "
        "simulator does (default: round for Shockwave traces, else epoch)",
    )
    p.add_argument(
        "--job-model",
        choices=JOB_MODEL_VIEWS,
        default="oracle",
        help="what the core is told of each job: oracle, its true profile (default); learned, the throughput "
        "posterior the live operator keeps, from the job's family prior and one noisy report per round it ran, at "
        "the allocation it held; learned-unknown, the same with the model name hidden (the generic prior, as for a "
        "model the profile book does not know). The truth drives progress either way",
    )
    p.add_argument("--report-noise", type=float, default=None, metavar="SD",
                   help="learned: relative sd of each report's noise (default 0.1)")
    p.add_argument("--report-outliers", type=float, default=None, metavar="FRACTION",
                   help="learned: share of reports that are outliers, x0.3-x3 the true rate (default 0.05)")
    p.add_argument("--profiling", action="store_true",
                   help="learned: profile the CPU knee of each job whose CPU/memory sensitivity is unknown, one probe "
                   "per round (stretto.core.profiling); each CPU or memory change costs --resize-overhead")
    p.add_argument("--seed", type=int, default=0, help="seed for generated workloads and for the reports' noise")
    p.add_argument("--out", type=Path, default=None, help="folder for results.json, per-job CSVs and plots")
    p.set_defaults(func=run)


def _default_profiles(workload: str) -> Path | None:
    path = Path(workload)
    if is_pollux_workload(path):
        return default_traces(path)
    if path.name.endswith(".csv") and (path.parent / "model_profiles.json").exists():
        return path.parent / "model_profiles.json"
    if path.name.endswith((".trace", ".jobs.jsonl")):
        for folder in (path.parent, path.parent.parent):
            if (folder / "tacc_throughputs.json").exists():
                return folder / "tacc_throughputs.json"
    return None


def _conventions(workload: str, args: argparse.Namespace) -> SimulationConfig:
    name = Path(workload).name
    shockwave = name.endswith((".trace", ".jobs.jsonl")) or workload.startswith(("shockwave:", "combined:", "elastic:"))
    elastic = workload.startswith("elastic:")
    pollux = is_pollux_workload(Path(workload))
    synergy = name.endswith(".csv") and not pollux
    peer_trace = name.endswith((".trace", ".jobs.jsonl"))  # the peer's own traces: the peer's mechanics
    round_s, restore_s, resize_s = (60.0, 30.0, 30.0) if pollux else (
        120.0 if shockwave else 300.0, 20.0 if shockwave else 0.0, 20.0 if elastic else 0.0)
    return SimulationConfig(
        round_seconds=args.round_seconds if args.round_seconds is not None else round_s,
        restore_overhead_s=args.restore_overhead if args.restore_overhead is not None else restore_s,
        resize_overhead_s=args.resize_overhead if args.resize_overhead is not None else resize_s,
        move_costs_restore=pollux if getattr(args, "move_costs_restore", None) is None else args.move_costs_restore,
        finish_at_round_end=args.finish_at_round_end if args.finish_at_round_end is not None else synergy,
        workers_can_move=args.workers_can_move,
        batch_switch=args.batch_switch or ("round" if peer_trace else "epoch"),
        **_job_model_options(args),
    )


def _job_model_options(args: argparse.Namespace) -> dict[str, object]:
    """The learned-model settings given; a namespace without them (a caller of `_conventions`) is the oracle."""
    options: dict[str, object] = {"job_model": getattr(args, "job_model", "oracle"),
                                  "report_seed": getattr(args, "seed", 0)}
    if getattr(args, "report_noise", None) is not None:
        options["report_noise"] = args.report_noise
    if getattr(args, "report_outliers", None) is not None:
        options["report_outlier_fraction"] = args.report_outliers
    if getattr(args, "profiling", False):
        options["profiling"] = True
    return options


def load_workload(
    spec: str, profiles_path: Path | None, seed: int, pollux_jobs: PolluxJobs = "tuned"
) -> tuple[list[WorkloadJob], ProfileBook]:
    if spec.split(":", 1)[0] in ("combined", "elastic"):
        book = load_combined_book(profiles_path)
        on_combined_book = {"combined": (CombinedWorkloadArgs, generate_combined),
                            "elastic": (ElasticWorkloadArgs, generate_elastic)}
        return generate_from_spec(spec, profiles=book, seed=seed, generators=on_combined_book), book
    if spec.split(":", 1)[0] in GENERATOR_PREFIXES:
        book = load_profile_book(profiles_path)
        return generate_from_spec(spec, profiles=book, seed=seed), book
    book = load_profile_book(profiles_path or _default_profiles(spec))
    return read_workload(Path(spec), book, pollux_jobs=pollux_jobs), book


def write_job_csv(result: SimulationResult, path: Path) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "job_id",
                "model",
                "gpus",
                "arrival_s",
                "first_start_s",
                "finish_s",
                "jct_s",
                "isolated_s",
                "rho",
                "rho_shockwave",
                "attained_gpu_seconds",
            ]
        )
        for o, rho, rho_sw in zip(result.outcomes, rhos(result), shockwave_rhos(result), strict=True):
            w.writerow(
                [
                    o.job_id,
                    o.model,
                    o.gpus,
                    f"{o.arrival_s:.3f}",
                    f"{o.first_start_s:.3f}",
                    f"{o.finish_s:.3f}",
                    f"{o.jct_s:.3f}",
                    f"{o.isolated_s:.3f}",
                    f"{rho:.4f}",
                    f"{rho_sw:.4f}",
                    f"{o.attained_gpu_seconds:.1f}",
                ]
            )


def run_label(policy: str, packer: str) -> str:
    """A run's name on two lines (policy, then packer): the label column stays narrow enough for the figures."""
    return f"{policy}\n[dim]{packer}[/dim]"


def _figures_table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("policy\npacker", overflow="fold")
    for column in columns:  # headers are set on two lines where one would be too wide; figures never wrap
        table.add_column(column, justify="right", no_wrap=True)
    return table


def summary_tables(rows: list[tuple[str, str, Summary]], predictor: str, *, oracle: bool = False) -> Group:
    """The runs' figures in two tables that each fit 80 columns: times, then fairness and packing."""
    times = _figures_table(f"stretto simulate (predictor {predictor}): times in hours",
                           ("makespan", "avg JCT", "median JCT", "p99 JCT"))
    fairness = _figures_table("fairness and packing",
                              ("worst ρ", "unfair %", "unfair %\n(Shockwave ρ)", "GPU util", "solver\np99 s"))
    for policy, packer, s in rows:
        label = run_label(f"{policy} (oracle)" if oracle else policy, packer)
        times.add_row(label, *(f"{v / 3600:.2f}" for v in (s.makespan_s, s.avg_jct_s, s.median_jct_s, s.p99_jct_s)))
        fairness.add_row(label, f"{s.worst_rho:.2f}", f"{100 * s.unfair_fraction:.1f}",
                         f"{100 * s.shockwave_unfair_fraction:.1f}", f"{100 * s.gpu_utilisation:.0f}%",
                         f"{s.solver_p99_s:.3f}")
    return Group(times, fairness)


def run(args: argparse.Namespace) -> int:
    console = Console()
    err = Console(stderr=True)
    try:
        nodes = parse_cluster_spec(args.cluster)
        workload, book = load_workload(args.workload, args.profiles, args.seed, args.pollux_jobs)
        config = _conventions(args.workload, args)
        combos = [(p.strip(), k.strip()) for p in args.policy.split(",") for k in args.packer.split(",")]
        policy_args, packer_args = json.loads(args.policy_args), json.loads(args.packer_args)
        plugins = {
            c: build_plugins(
                RoundConfig(
                    predictor=PluginSpec(name=args.predictor),
                    policy=PluginSpec(name=c[0], args=policy_args),
                    packer=PluginSpec(name=c[1], args=packer_args),
                )
            )
            for c in combos
        }
        sims = {
            c: Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins[c], config=config)
            for c in combos
        }
    except (ValueError, KeyError, OSError, ClusterSpecError, WorkloadError) as e:
        err.print(f"[red]error:[/red] {e}")
        return 2
    results: dict[tuple[str, str], SimulationResult] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} jobs"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    ) as progress:
        for combo, sim in sims.items():
            task = progress.add_task(f"{combo[0]} × {combo[1]}", total=len(workload))
            results[combo] = sim.run(lambda _t, done, _n, task=task: progress.update(task, completed=done))
    rows = [(p, k, summarise(r)) for (p, k), r in results.items()]
    oracle = any(p.predictor.oracle for p in plugins.values())
    predictor_label = f"{args.predictor} (oracle)" if oracle else args.predictor
    if config.job_model != "oracle":
        predictor_label += f"; job model {config.job_model}" + (", CPU knees profiled" if config.profiling else "")
    console.print(summary_tables(rows, predictor_label, oracle=oracle))
    if args.out is not None:
        out: Path = args.out
        out.mkdir(parents=True, exist_ok=True)
        records = []
        for policy, packer, s in rows:
            records.append(
                {
                    "policy": policy,
                    "packer": packer,
                    "predictor": args.predictor,
                    "oracle": oracle,
                    **asdict(s),
                    "round_seconds": config.round_seconds,
                    "restore_overhead_s": config.restore_overhead_s,
                    "workers_can_move": config.workers_can_move,
                    "batch_switch": config.batch_switch,
                    "job_model": config.job_model,
                    "profiling": config.profiling,
                    "jobs": len(workload),
                    "gpus": sum(n.gpus for n in nodes),
                }
            )
            write_job_csv(results[(policy, packer)], out / f"jobs_{policy}_{packer}.csv")
        (out / "results.json").write_text(json.dumps(records, indent=2) + "\n")
        from stretto.sim.plots import write_plots

        write_plots({f"{p} × {k}": r for (p, k), r in results.items()}, out)
        console.print(f"wrote {out}/results.json, {len(rows)} per-job CSVs and 3 plots")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the project CLI calls `register`)."""
    parser = argparse.ArgumentParser(prog="stretto")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
