"""Solver time per round at scale: Shockwave's 900-job trace on 256 GPUs, `shockwave` and `stretto`.

Target (issue 4): p99 of the round time (predictor + policy + packer; the policy holds the
solver) below 1 s for both. The peer allows 15 s per solve and hits it on a fifth of its solves.
Also prints `gavel` on the same trace as the baseline in the same run.

    .venv/bin/python bench/bench_solver_time.py [--trace 900_0.2_5_100] [--policies shockwave stretto gavel]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.metrics import summarise
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import read_workload

PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers" / "shockwave"
TARGET_P99_S = 1.0




def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trace", default="900_0.2_5_100_5_15")
    parser.add_argument("--policies", nargs="+", default=["shockwave", "stretto", "gavel"])
    args = parser.parse_args()
    print(describe())
    trace = next((PEERS / "traces").glob(f"{args.trace}*.jobs.jsonl"))
    book = load_profile_book(PEERS)
    workload = read_workload(trace, book)
    nodes = parse_cluster_spec("256x1")
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20)
    print(f"{trace.name}: {len(workload)} jobs, 256 GPUs, rounds of 120 s, predictor bayesian-regime\n")
    print(f"{'policy':10} {'rounds':>6} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'makespan h':>10} {'unfair %':>8}")
    for policy in args.policies:
        start = time.perf_counter()
        plugins = build_plugins(
            RoundConfig(
                predictor=PluginSpec(name="bayesian-regime"),
                policy=PluginSpec(name=policy),
                packer=PluginSpec(name="proportional"),
            )
        )
        s = summarise(Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run())
        verdict = "ok" if s.solver_p99_s < TARGET_P99_S else "MISSED"
        print(
            f"{policy:10} {s.rounds:6d} {s.solver_p50_s:7.3f} {s.solver_p99_s:7.3f} {s.solver_max_s:7.3f} "
            f"{s.makespan_s / 3600:10.2f} {100 * s.unfair_fraction:8.1f}  p99 < {TARGET_P99_S} s: {verdict} "
            f"(ratio {s.solver_p99_s / TARGET_P99_S:.3f}; wall {time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
