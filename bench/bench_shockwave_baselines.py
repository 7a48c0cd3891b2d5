"""Gavel-style baselines on Shockwave's 120-job trace and 32 GPUs (rounds of 120 s, 20 s restore).

Prints makespan, JCTs, worst ρ and the unfair fraction next to the numbers Shockwave's simulator
prints (../shared/data/peers/README.md), with the ratio to them and to FIFO in the same run.
Targets (issue 3): gavel (max-min) and themis makespans within 5 % of 9.22 h and 8.98 h.

    .venv/bin/python bench/bench_shockwave_baselines.py
"""

from __future__ import annotations

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
TRACE = PEERS / "traces" / "120_0.2_5_100_40_25_0,0.5,0.5_0.6,0.3,0.09,0.01_multigpu_dynamic.jobs.jsonl"
# Shockwave's simulator: makespan h, avg JCT h, p99 JCT h, worst ρ, unfair %.
PEER = {
    "gavel": (9.22, 3.13, 7.89, 2.95, 25.0),
    "themis": (8.98, 3.16, 7.68, 3.05, 23.3),
    "allox": (9.06, 2.77, 6.22, 4.96, 27.5),
}
POLICIES = ("fifo", "gavel", "themis", "allox", "las", "srtf", "drf")
TARGETS = {"gavel", "themis"}
TOLERANCE = 0.05




def main() -> None:
    print(describe())
    book = load_profile_book(PEERS)
    workload = read_workload(TRACE, book)
    nodes = parse_cluster_spec("32x1")  # Gavel's simulator: 32 GPUs, one per server, no placement
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20)
    print(f"{len(workload)} jobs, 32 GPUs, rounds of 120 s, 20 s restore, packer proportional\n")
    print(
        f"{'policy':7} {'makespan h':>10} {'peer':>6} {'ratio':>6} {'vs fifo':>7} {'avg JCT h':>9} {'peer':>5} "
        f"{'p99 JCT h':>9} {'peer':>5} {'worst ρ':>7} {'peer':>5} {'unfair %':>8} {'peer':>5} {'wall s':>6}"
    )
    fifo = None
    for policy in POLICIES:
        start = time.perf_counter()
        plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy), packer=PluginSpec(name="proportional")))
        s = summarise(Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run())
        wall = time.perf_counter() - start
        makespan = s.makespan_s / 3600
        fifo = fifo or makespan
        peer = PEER.get(policy)
        cells = [f"{v:>5}" for v in peer[1:]] if peer else [f"{'-':>5}"] * 4
        ratio = f"{makespan / peer[0]:6.3f}" if peer else f"{'-':>6}"
        flag = ""
        if policy in TARGETS:
            flag = "  ok" if abs(makespan / peer[0] - 1) <= TOLERANCE else "  OUTSIDE 5%"
        print(
            f"{policy:7} {makespan:10.2f} {peer[0] if peer else '-':>6} {ratio} {makespan / fifo:7.3f} "
            f"{s.avg_jct_s / 3600:9.2f} {cells[0]} {s.p99_jct_s / 3600:9.2f} {cells[1]} {s.worst_rho:7.2f} "
            f"{cells[2]} {100 * s.unfair_fraction:8.1f} {cells[3]} {wall:6.1f}{flag}",
            flush=True,
        )


if __name__ == "__main__":
    main()
