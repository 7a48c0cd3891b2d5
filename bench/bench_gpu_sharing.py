"""GPU sharing (issue 4): does co-locating single-GPU jobs that did not fit help `stretto`?

Policy `stretto` (bayesian-regime predictor), 120 s rounds, 20 s restore, with the packer's
`share_gpus` off (the baseline) and on, in the same run:
1. the combined workload (`stretto.sim.combined_workload`, as bench_adaptation.py section 5),
   4 × (8 GPUs, 24 CPUs, 500 GiB), packer synergy-tune;
2. Shockwave's 120-job trace, 32 GPUs (one per server), packer proportional.
A third row adds the packer's makespan guard (`stretto.core.packers.gpu_sharing`). Columns:
makespan, average JCT, worst ρ, unfair fraction (ρ > 1.05, `stretto.sim.metrics`), GPU utilisation
(a shared GPU counts once), the average number of jobs on a shared GPU per round, and the ratios of
each row to sharing off. Pair speeds come from Shockwave's `tacc_throughputs.json`
(`stretto.core.colocation`; `--gpu-type`, p100 by default, see there why).

    .venv/bin/python bench/bench_gpu_sharing.py [--quick] [--gpu-type p100] [--threshold 1.1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from machine_info import describe

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.combined_workload import CombinedWorkloadArgs, generate_combined, load_combined_book
from stretto.sim.metrics import Summary, summarise
from stretto.sim.simulator import SimulationConfig, SimulationResult, Simulator
from stretto.sim.workloads import read_workload

PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers"
TRACE = PEERS / "shockwave" / "traces" / "120_0.2_5_100_40_25_0,0.5,0.5_0.6,0.3,0.09,0.01_multigpu_dynamic.jobs.jsonl"
COMBINED_SPECS = ((1, 200, 15.0), (3, 160, 20.0))  # seed, jobs, mean inter-arrival s (bench_adaptation's)
CONFIG = SimulationConfig(round_seconds=120, restore_overhead_s=20)
HEADER = (
    f"{'':26} {'makespan h':>10} {'avgJCT h':>8} {'worstρ':>6} {'unfair%':>7} {'GPU util':>8} "
    f"{'shared/rd':>9} {'mk ratio':>8} {'JCT ratio':>9} {'wall s':>6}"
)


def simulate(workload, book, nodes, packer: str, packer_args: dict) -> tuple[Summary, SimulationResult, float]:
    plugins = build_plugins(
        RoundConfig(
            predictor=PluginSpec(name="bayesian-regime"),
            policy=PluginSpec(name="stretto"),
            packer=PluginSpec(name=packer, args=packer_args),
        )
    )
    start = time.perf_counter()
    result = Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=CONFIG).run()
    return summarise(result), result, time.perf_counter() - start


def compare(title: str, workload, book, nodes, packer: str, sharing: dict) -> None:
    print(f"\n{title}, packer {packer}\n{HEADER}")
    base = None
    variants = (
        ("share_gpus off", {}),
        ("share_gpus on", {"share_gpus": True, **sharing}),
        ("on + guard_makespan", {"share_gpus": True, "guard_makespan": True, **sharing}),
    )
    for label, args in variants:
        s, result, wall = simulate(workload, book, nodes, packer, args)
        shared = sum(r.shared_jobs for r in result.rounds) / max(1, len(result.rounds))
        base = base or s
        print(
            f"{label:26} {s.makespan_s / 3600:10.2f} {s.avg_jct_s / 3600:8.2f} {s.worst_rho:6.2f} "
            f"{100 * s.unfair_fraction:7.1f} {100 * s.gpu_utilisation:7.1f}% {shared:9.2f} "
            f"{s.makespan_s / base.makespan_s:8.3f} {s.avg_jct_s / base.avg_jct_s:9.3f} {wall:6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one combined seed only")
    parser.add_argument("--gpu-type", default="p100", help="which GPU type's co-location pairs to read")
    parser.add_argument("--threshold", type=float, default=1.1, help="least combined normalised throughput")
    opts = parser.parse_args()
    sharing = {
        "colocation_table": str(PEERS / "shockwave"),
        "colocation_gpu_type": opts.gpu_type,
        "min_combined_speed": opts.threshold,
    }
    print(describe("benchmarks run one at a time"))
    print(f"co-location pairs: {opts.gpu_type}, threshold {opts.threshold}; policy stretto (bayesian-regime)")

    book = load_combined_book(PEERS)
    nodes = parse_cluster_spec("4x8,cpus=24,memory=500Gi")
    for seed, jobs, iat in COMBINED_SPECS[:1] if opts.quick else COMBINED_SPECS:
        workload = generate_combined(CombinedWorkloadArgs(jobs=jobs, mean_interarrival_s=iat), profiles=book, seed=seed)
        title = f"1. combined workload seed {seed}, {jobs} jobs, mean inter-arrival {iat:g} s,"
        title += " 4 × (8 GPUs, 24 CPUs, 500 GiB)"
        compare(title, workload, book, nodes, "synergy-tune", sharing)

    book = load_profile_book(PEERS / "shockwave")
    compare(
        "2. Shockwave's 120-job trace, 32 GPUs (32 × 1)",
        read_workload(TRACE, book),
        book,
        parse_cluster_spec("32x1"),
        "proportional",
        sharing,
    )


if __name__ == "__main__":
    main()
