"""Pollux's workloads 1-4 (160 jobs, 16 × 4 GPUs): `stretto` with goodput jobs against Pollux's published figures.

Every job runs as Pollux runs its own (`stretto simulate --pollux-jobs goodput`): elastic from 1 GPU,
its batch chosen each round in Pollux's range (smallest to largest validated batch; ncf pinned to one
GPU at 32,768), progress = samples × statistical efficiency at the batch it ran, from the
validation files' gradient noise scale (`stretto.core.goodput`). Pollux's mechanics: 60 s rounds,
30 s of restart on every allocation change (start, resize, move). Running workers stay where they
are (`workers_can_move=False`, as pods in the live cluster and Tiresias' jobs in Pollux's
simulator); the `most-free` packer puts new workers on the nodes with the most free GPUs.
`stretto (workers move)` re-places every job each round, each move a restart: twice as many
restarts, most of the gap. The `stretto` row uses the
operator's predictor (`bayesian-regime`) and no foresight of job lengths; its goodput model reads
the noise scale ahead from the profile (the validation files, epoch by epoch: an oracle of how the
noise grows, as the throughput table is an oracle of speed); `stretto (noise as now)` assumes
today's noise scale for the rest of the run, all Pollux's scheduler knows.

Context rows: `elastic` (Elastic-KubeFlow's equal growth; each job runs the goodput-best batch for
the GPUs it gets) on the same goodput jobs, and `las` at Tiresias' threshold on TunedJobs (rigid),
as `bench_pollux_fidelity.py` runs it.

Figures per workload, as ratios to Pollux's published ones (`published_jcts.json`): average JCT
(target < 1), p99 JCT and makespan (target ≤ 1.05); the unfair fraction (ρ > 1.05, ρ of
`stretto.sim.metrics`) of each row beside Pollux's own, both under one ρ: T_fair from each job's
goodput scaling curve T(g) (its whole run at each epoch's goodput-best batch on g consolidated
GPUs, the simulator's `job_scaling_curve`) at 1/N̄ of the GPUs, N̄ the time-averaged number of jobs
alive over the job's life in that row's own run (Pollux's from its published arrival + JCT);
target: below Pollux's; and the solver p99 per round (target < 0.5 s). Workloads 5-8 are held out.

    nice -n 10 .venv/bin/python bench/bench_pollux.py [--workloads 1 2 3 4] [--rows stretto ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
from machine_info import describe  # bench/machine_info.py

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.metrics import UNFAIR_RHO, rhos, summarise
from stretto.sim.pollux_traces import read_pollux_csv
from stretto.sim.simulator import SimulationConfig, SimulationResult, Simulator

POLLUX = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers" / "pollux"
WORKLOADS = (1, 2, 3, 4)
MECHANICS = {"round_seconds": 60, "restore_overhead_s": 30, "resize_overhead_s": 30, "move_costs_restore": True}
TIRESIAS_ARGS = {"queue_thresholds_gpu_s": [57600.0], "starvation_factor": 0.0, "admit_by_gpu_count": True}
# Pollux's simulator re-places a job whose GPU count changes (every allocation change restarts it anyway).
POLLUX_PACKER_ARGS: dict[str, dict] = {"most-free": {"resized_anew": True}}
# name: (jobs, policy, policy args, predictor args, packer, workers can move)
ROWS: dict[str, tuple[str, str, dict, dict, str, bool]] = {
    "stretto": ("goodput", "stretto", {}, {}, "most-free", False),
    "stretto (noise as now)": ("goodput", "stretto", {"goodput_forecast": "current"}, {"goodput_forecast": "current"},
                               "most-free", False),
    "stretto (workers move)": ("goodput", "stretto", {}, {}, "most-free", True),
    "elastic": ("goodput", "elastic", {}, {}, "most-free", False),
    "las (Tiresias)": ("tuned", "las", TIRESIAS_ARGS, {}, "most-free", False),
}
# A job's T_fair needs its goodput scaling curve, the same in every goodput run (it depends on the job alone).


def figures(jcts: list[float], arrivals: list[float], finishes: list[float]) -> tuple[float, float, float]:
    """(avg JCT, p99 JCT, makespan) in seconds."""
    return float(np.mean(jcts)), float(np.percentile(jcts, 99)), max(finishes) - min(arrivals)


def unfair_fraction(goodput_run: SimulationResult, jcts: dict[str, float]) -> float:
    """Share of jobs at ρ > 1.05 with these JCTs, T_fair from the goodput run's scaling curves."""
    outcomes = tuple(dataclasses.replace(o, finish_s=o.arrival_s + jcts[o.job_id]) for o in goodput_run.outcomes)
    return float(np.mean(rhos(dataclasses.replace(goodput_run, outcomes=outcomes)) > UNFAIR_RHO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", type=int, default=list(WORKLOADS))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    args = parser.parse_args()
    if any(w not in WORKLOADS for w in args.workloads):
        parser.error("workloads 5-8 are held out")
    print(describe())
    book = load_profile_book(POLLUX / "traces")
    published = json.loads((POLLUX / "published_jcts.json").read_text())["jcts"]["pollux"]
    nodes = parse_cluster_spec("16x4")
    print(f"rounds {MECHANICS['round_seconds']} s, restore/resize/move {MECHANICS['restore_overhead_s']} s, "
          "bayesian-regime; ratios to Pollux's published figures")
    print(f"{'workload':8} {'row':24} {'avg JCT s':>9} {'ratio':>6} {'p99 JCT s':>9} {'ratio':>6} {'makespan':>9} "
          f"{'ratio':>6} {'unfair':>6} {'Pollux':>6} {'solver p99':>10} {'wall s':>6}")
    for number in args.workloads:
        path = POLLUX / "workloads" / f"workload-{number}.csv"
        peer_jcts = published[f"workload-{number}"]
        goodput_jobs = read_pollux_csv(path, book, jobs="goodput")
        arrivals = {j.id: j.arrival_s for j in goodput_jobs}
        peer = figures(list(peer_jcts.values()), list(arrivals.values()),
                       [arrivals[n] + t for n, t in peer_jcts.items()])
        curves: SimulationResult | None = None
        for row in args.rows:
            jobs_kind, policy, policy_args, predictor_args, packer, can_move = ROWS[row]
            workload = goodput_jobs if jobs_kind == "goodput" else read_pollux_csv(path, book, jobs=jobs_kind)
            packer_spec = PluginSpec(name=packer, args=POLLUX_PACKER_ARGS.get(packer, {}))
            plugins = build_plugins(RoundConfig(predictor=PluginSpec(name="bayesian-regime", args=predictor_args),
                                                policy=PluginSpec(name=policy, args=policy_args), packer=packer_spec))
            config = SimulationConfig(**MECHANICS, workers_can_move=can_move)
            start = time.perf_counter()
            result = Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run()
            wall = time.perf_counter() - start
            if jobs_kind == "goodput" and curves is None:
                curves = result
            jcts = {o.job_id: o.jct_s for o in result.outcomes}
            ours = figures(list(jcts.values()), [o.arrival_s for o in result.outcomes],
                           [o.finish_s for o in result.outcomes])
            ratios = [a / b for a, b in zip(ours, peer, strict=True)]
            if curves is None:  # the rigid row alone: curves from a goodput run nobody printed
                curves = Simulator(workload=goodput_jobs, nodes=nodes, profiles=book, plugins=build_plugins(
                    RoundConfig(policy=PluginSpec(name="elastic"),
                                packer=PluginSpec(name="most-free", args=POLLUX_PACKER_ARGS["most-free"]))),
                    config=SimulationConfig(**MECHANICS)).run()
            unfair, peer_unfair = unfair_fraction(curves, jcts), unfair_fraction(curves, peer_jcts)
            solver = summarise(result).solver_p99_s
            print(f"{number:8} {row:24} {ours[0]:9.0f} {ratios[0]:6.3f} {ours[1]:9.0f} {ratios[1]:6.3f} "
                  f"{ours[2]:9.0f} {ratios[2]:6.3f} {unfair:6.3f} {peer_unfair:6.3f} {solver:10.4f} {wall:6.1f}",
                  flush=True)
        print(f"{number:8} {'Pollux (published)':24} {peer[0]:9.0f} {'':6} {peer[1]:9.0f} {'':6} {peer[2]:9.0f}")


if __name__ == "__main__":
    main()
