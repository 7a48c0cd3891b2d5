"""Pollux's workloads 1-4 (160 jobs, 16 × 4 GPUs): `las` and `optimus` against Pollux's own Tiresias and Optimus.

Pollux's simulator (petuum/adaptdl `osdi21-artifact`) runs Tiresias with one threshold of
57,600 GPU-s (16 GPU-hours) and no starvation promotion, TunedJobs GPU counts and batch sizes,
60 s rounds and 30 s of restart on every allocation change; a job keeps its GPUs while it runs
and new ones go to the nodes with the most free GPUs. Here: `las` with that threshold and
Tiresias' admission (`admit_by_gpu_count`), the `most-free` packer with running workers kept put
(`workers_can_move=False`), a move costing a restore, and the profiles read straight from
Pollux's traces folder. Figures: avg JCT, p99 JCT (numpy linear percentile), makespan (last
completion − first arrival), against the same figures from Pollux's published per-job JCTs
(`published_jcts.json`); target within 2 % on all three, every workload. Workloads 5-8 are held out.

Optimus+Oracle: each job elastic from 1 GPU to batch / smallest local batch (ncf pinned to 1, as
Pollux pins it) at its TunedJobs batch, `optimus` (remaining work by epoch, as Pollux counts it)
× `most-free`, the same mechanics; target within 5 %.

    nice -n 10 .venv/bin/python bench/bench_pollux_fidelity.py [--packer proportional]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from machine_info import describe  # bench/machine_info.py

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.pollux_traces import read_pollux_csv
from stretto.sim.simulator import SimulationConfig, Simulator

POLLUX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers" / "pollux"
WORKLOADS = (1, 2, 3, 4)
TIRESIAS_ARGS = {"queue_thresholds_gpu_s": [57600.0], "starvation_factor": 0.0, "admit_by_gpu_count": True}
CONFIG = SimulationConfig(round_seconds=60, restore_overhead_s=30, resize_overhead_s=30, move_costs_restore=True,
                          workers_can_move=False)
# (policy, its args, Pollux's policy in published_jcts.json, elastic jobs, tolerance)
RUNS = (("las", TIRESIAS_ARGS, "tiresias", False, 0.02), ("optimus", {}, "optimus", True, 0.05))


def figures(jcts: list[float], arrivals: list[float], finishes: list[float]) -> tuple[float, float, float]:
    """(avg JCT, p99 JCT, makespan) in seconds."""
    return float(np.mean(jcts)), float(np.percentile(jcts, 99)), max(finishes) - min(arrivals)


# Pollux's simulator re-places a job whose GPU count changes (every allocation change restarts it anyway).
POLLUX_PACKER_ARGS: dict[str, dict] = {"most-free": {"resized_anew": True}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packer", default="most-free")
    args = parser.parse_args()
    print(describe())
    book = load_profile_book(POLLUX / "traces")
    published = json.loads((POLLUX / "published_jcts.json").read_text())["jcts"]
    nodes = parse_cluster_spec("16x4")
    for policy, policy_args, peer_name, elastic, tolerance in RUNS:
        print(f"\n{policy} {policy_args} × {args.packer}, bayesian-regime, {'elastic' if elastic else 'rigid'} jobs; "
              f"rounds {CONFIG.round_seconds:.0f} s, restore/resize/move {CONFIG.restore_overhead_s:.0f} s, workers "
              f"kept put; against Pollux's {peer_name}")
        print(f"{'workload':8} {'avg JCT s':>9} {'Pollux':>9} {'ratio':>6} {'p99 JCT s':>9} {'Pollux':>9} {'ratio':>6} "
              f"{'makespan s':>10} {'Pollux':>9} {'ratio':>6} {'wall s':>6}")
        worst = 0.0
        for number in WORKLOADS:
            workload = read_pollux_csv(POLLUX / "workloads" / f"workload-{number}.csv", book,
                                       jobs="elastic" if elastic else "tuned")
            arrivals = {j.id: j.arrival_s for j in workload}
            peer_jcts = published[peer_name][f"workload-{number}"]
            peer = figures(list(peer_jcts.values()), list(arrivals.values()),
                           [arrivals[name] + jct for name, jct in peer_jcts.items()])
            plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy, args=policy_args),
                                                packer=PluginSpec(name=args.packer, args=POLLUX_PACKER_ARGS.get(
                                                    args.packer, {}))))
            start = time.perf_counter()
            result = Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=CONFIG).run()
            wall = time.perf_counter() - start
            ours = figures([o.jct_s for o in result.outcomes], [o.arrival_s for o in result.outcomes],
                           [o.finish_s for o in result.outcomes])
            ratios = [a / b for a, b in zip(ours, peer, strict=True)]
            worst = max(worst, *(abs(r - 1) for r in ratios))
            cells = " ".join(f"{a:9.0f} {b:9.0f} {r:6.3f}" if i < 2 else f"{a:10.0f} {b:9.0f} {r:6.3f}"
                             for i, (a, b, r) in enumerate(zip(ours, peer, ratios, strict=True)))
            flag = "  ok" if all(abs(r - 1) <= tolerance for r in ratios) else f"  OUTSIDE {100 * tolerance:.0f}%"
            print(f"{number:8} {cells} {wall:6.1f}{flag}", flush=True)
        print(f"{policy}: worst deviation {100 * worst:.2f} % (target ≤ {100 * tolerance:.0f} %)")


if __name__ == "__main__":
    main()
