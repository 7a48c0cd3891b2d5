"""What learning each job costs the flagship (issue 14's bench): learned job models against the oracle.

`stretto` × `synergy-tune` with `bayesian-regime`, on the elastic workloads of the elastic-fair
bench (`bench_elastic_fair.py` section 1, same settings): the demo workload and `elastic:jobs=40`
held-out seeds 1-6. Each workload runs three ways (`SimulationConfig.job_model`):

* oracle: the core is handed each job's true profile (what every other bench does);
* learned: the core sees the throughput posterior the live operator keeps (`stretto.core.job_model`),
  from the job's family prior, fed one report per round it ran at the allocation it held, drawn from
  the truth with noise (`--noise`, relative sd) and outliers (`--outliers`, x0.3-x3);
* learned-unknown: the same with the model name hidden, so the generic data-parallel prior is used;
* learned-unknown+profiling: the same, each job's CPU knee profiled (`SimulationConfig.profiling`,
  `stretto.core.profiling`): one probe per round at the CPUs per GPU the search asks for, each CPU or
  memory change charged `resize_overhead_s` (20 s on the elastic seeds, 0 on the demo, as its settings
  charge no restart either).

The truth drives progress either way. Each learned run is repeated for every `--report-seeds` (the
reports' noise), as one report more or less can move one job's tail and the makespan with it.

A diagnosis row, "oracle, CPU/memory hidden", hands the core the true rates without the CPU × memory
sensitivity grid. A job the core does not know is packed at the proportional share until a report
off that share speaks about CPU or memory, and at the proportional share no report ever is: what
this row loses against the oracle is the part of learned-unknown's gap that learning throughput
cannot close and profiling (issue 14, item 2: Synergy's optimistic profiling) must.

Target (issue 14): learning must not eat the policy's win. Per workload, averaged over report
seeds: makespan and avg JCT ratio learned / oracle ≤ 1.05, and the unfair fraction at most 5
points above the oracle's. Points, not 5 % of the fraction: one job of 40 is 2.5 points (one of the
demo's 20 is 5), so 5 % of a 25 % fraction would be a twentieth of a job.

    .venv/bin/python bench/bench_learned_model.py [--seeds 1 2 3 4 5 6] [--report-seeds 0 1 2]
        [--noise 0.1] [--outliers 0.05] [--views learned learned-unknown learned-unknown+profiling]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
from dataclasses import replace

from bench_elastic_fair import HeldOut, held_out  # bench/bench_elastic_fair.py: its section 1's workloads
from machine_info import describe  # bench/machine_info.py

from stretto.core.profiles import ModelProfile
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.metrics import Summary, summarise
from stretto.sim.simulator import JobProgress, SimulationConfig, Simulator

POLICY, PACKER, PREDICTOR = "stretto", "synergy-tune", "bayesian-regime"
LEARNED = ("learned", "learned-unknown", "learned-unknown+profiling")
MAX_RATIO = 1.05
MAX_UNFAIR_POINTS = 5.0


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


class SensitivityHidden(Simulator):
    """The oracle without the CPU × memory grid: the core knows a job's true rates, not its sensitivity."""

    def belief(self, p: JobProgress) -> ModelProfile:
        hidden: dict[str, ModelProfile] = self.__dict__.setdefault("_hidden", {})
        if p.spec.model not in hidden:
            hidden[p.spec.model] = replace(super().belief(p), sensitivity=None)
        return hidden[p.spec.model]


def simulate(w: HeldOut, config: SimulationConfig, simulator: type[Simulator] = Simulator) -> tuple[Summary, float]:
    plugins = build_plugins(RoundConfig(predictor=PluginSpec(name=PREDICTOR), policy=PluginSpec(name=POLICY),
                                        packer=PluginSpec(name=PACKER)))
    start = time.perf_counter()
    s = summarise(simulator(workload=w.jobs, nodes=w.nodes, profiles=w.book, plugins=plugins, config=config).run())
    return s, time.perf_counter() - start


HEAD = (f"{'':42} {'makespan h':>10} {'avg JCT h':>9} {'unfair %':>8} {'mk ratio':>8} {'JCT ratio':>9} "
        f"{'unfair pts':>10} {'wall s':>6}")


def row(label: str, s: Summary, oracle: Summary, wall: float) -> str:
    return (f"{label:42} {s.makespan_s / 3600:10.3f} {s.avg_jct_s / 3600:9.3f} {100 * s.unfair_fraction:8.1f} "
            f"{s.makespan_s / oracle.makespan_s:8.3f} {s.avg_jct_s / oracle.avg_jct_s:9.3f} "
            f"{100 * (s.unfair_fraction - oracle.unfair_fraction):+10.1f} {wall:6.1f}")


def gaps(runs: list[Summary], oracle: Summary) -> tuple[float, float, float]:
    """Mean makespan ratio, avg JCT ratio and unfair-fraction points above the oracle over the report seeds."""
    n = len(runs)
    return (sum(s.makespan_s for s in runs) / n / oracle.makespan_s,
            sum(s.avg_jct_s for s in runs) / n / oracle.avg_jct_s,
            100 * (sum(s.unfair_fraction for s in runs) / n - oracle.unfair_fraction))


def met(gap: tuple[float, float, float]) -> bool:
    return gap[0] <= MAX_RATIO and gap[1] <= MAX_RATIO and gap[2] <= MAX_UNFAIR_POINTS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5, 6])
    parser.add_argument("--report-seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--noise", type=float, default=SimulationConfig().report_noise)
    parser.add_argument("--outliers", type=float, default=SimulationConfig().report_outlier_fraction)
    parser.add_argument("--views", nargs="+", choices=LEARNED, default=list(LEARNED))
    args = parser.parse_args()
    print(describe(), f"| {load()}")
    print(f"{POLICY} × {PACKER}, predictor {PREDICTOR}; reports: noise sd {args.noise:g}, outliers "
          f"{100 * args.outliers:g} % (x0.3-x3), report seeds {args.report_seeds}; target per workload (mean over "
          f"report seeds): makespan and avg JCT ratio ≤ {MAX_RATIO}, unfair ≤ +{MAX_UNFAIR_POINTS:g} points")
    verdicts: dict[str, dict[str, tuple[float, float, float]]] = {}
    diagnosis: dict[str, tuple[float, float, float]] = {}
    for w in held_out(args.seeds):  # bench_elastic_fair's section 1, setting for setting
        print(f"\n{w.label} ({len(w.jobs)} jobs), {w.config.round_seconds:g} s rounds [{load()}]\n{HEAD}", flush=True)
        oracle, wall = simulate(w, w.config)
        print(row("oracle", oracle, oracle, wall), flush=True)
        blind, wall = simulate(w, w.config, SensitivityHidden)
        print(row("oracle, CPU/memory hidden", blind, oracle, wall), flush=True)
        diagnosis[w.label] = gaps([blind], oracle)
        verdicts[w.label] = {}
        for view in args.views:
            runs = []
            for seed in args.report_seeds:
                job_model, _, profiling = view.partition("+")
                config = w.config.model_copy(update={"job_model": job_model, "report_noise": args.noise,
                                                     "report_outlier_fraction": args.outliers, "report_seed": seed,
                                                     "profiling": bool(profiling)})
                s, wall = simulate(w, config)
                runs.append(s)
                print(row(f"{view}, report seed {seed}", s, oracle, wall), flush=True)
            gap = verdicts[w.label][view] = gaps(runs, oracle)
            print(f"{view + ' (mean)':42} {'':10} {'':9} {'':8} {gap[0]:8.3f} {gap[1]:9.3f} {gap[2]:+10.1f}  "
                  + ("met" if met(gap) else "MISSED"), flush=True)
    print(f"\nsummary (mean over report seeds) [{load()}]")
    print(f"{'':16} " + " ".join(f"{view + ' mk / JCT / pts':>42}" for view in args.views)
          + f" {'(CPU/memory hidden)':>26}")
    for label, by_view in verdicts.items():
        cells = [f"{g[0]:6.3f} / {g[1]:6.3f} / {g[2]:+5.1f} {'met' if met(g) else 'MISSED':>6}"
                 for g in by_view.values()]
        d = diagnosis[label]
        print(f"{label:16} " + " ".join(f"{c:>42}" for c in cells) + f" {d[0]:8.3f} / {d[1]:6.3f} / {d[2]:+5.1f}")
    for view in args.views:
        all_gaps = [by_view[view] for by_view in verdicts.values()]
        n = len(all_gaps)
        mean = tuple(sum(g[i] for g in all_gaps) / n for i in range(3))
        missed = [label for label, by_view in verdicts.items() if not met(by_view[view])]
        print(f"{view}: mean over workloads makespan {mean[0]:.3f}, avg JCT {mean[1]:.3f}, unfair {mean[2]:+.1f} "
              f"points; target " + ("met on every workload" if not missed else f"MISSED on {', '.join(missed)}"))


if __name__ == "__main__":
    main()
