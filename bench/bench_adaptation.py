"""Fairness under dynamic adaptation: Shockwave's trace, generated traces, and `stretto`'s ablation.

1. Shockwave's 120-job trace, 32 GPUs (one per server), rounds of 120 s, 20 s restore, and the
   peer simulator's batch-size mechanics (`batch_switch="round"`: a job takes its next batch size
   after the next round it runs, GNS doubling at most once a round, progress rounded up to an
   epoch; sections 1-3 use them): every
   policy with the `bayesian-regime` predictor (`planned-schedule` for the peers' baselines, as
   their simulator has the true schedule), makespan / avg JCT / worst ρ / unfair fraction, with
   the ratio to the numbers Shockwave's own simulator prints and to `gavel` in the same run.
   Targets (issue 4): `shockwave` within 5 % of 6.64 h and ≤ 7.5 % unfair; `stretto` below
   6.64 h and ≤ 5 % unfair.
2. Shockwave-style generated traces at other seeds and loads (same cluster).
3. `stretto`'s ablation on the 120-job trace: each part switched off in turn.
4. Synergy's static trace (4 × 8 GPUs, 24 CPUs, 500 GB): `stretto` + `synergy-tune` vs
   `fifo` + `synergy-tune` (target: no worse).
5. The combined workload (`stretto.sim.combined_workload`: Shockwave-style adaptive jobs with
   Synergy's CPU/memory sensitivity) on 4 × (8 GPUs, 24 CPUs, 500 GiB), 120 s rounds, 20 s
   restore: every policy × packer pair among fifo, gavel, themis, allox, shockwave, stretto,
   elastic × proportional, synergy-tune, with ratios to the best baseline (every pair but
   `stretto`'s); then `stretto`'s ablation on it. Target (issue 4): `stretto` has the best
   makespan and average JCT of every pair, unfair fraction no higher than `shockwave`'s. Seeds
   1-3 (with the ablation) and 4-8 (200 jobs, 15 s; held out at first, then used too) are the
   ones `stretto`'s defaults were chosen on; seeds 9-12 are held out, never used to tune; a last
   line says per seed whether the target is met.

    .venv/bin/python bench/bench_adaptation.py [--quick] [--combined-only]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.combined_workload import CombinedWorkloadArgs, generate_combined, load_combined_book
from stretto.sim.generators import ShockwaveWorkloadArgs, generate_shockwave
from stretto.sim.metrics import Summary, summarise
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import read_workload

PEERS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "peers"
TRACE = PEERS / "shockwave" / "traces" / "120_0.2_5_100_40_25_0,0.5,0.5_0.6,0.3,0.09,0.01_multigpu_dynamic.jobs.jsonl"
# Shockwave's simulator on the 120-job trace: makespan h, avg JCT h, worst ρ, unfair %.
PEER = {
    "shockwave": (6.64, 2.76, 1.64, 5.0),
    "gavel": (9.22, 3.13, 2.95, 25.0),
    "themis": (8.98, 3.16, 3.05, 23.3),
    "allox": (9.06, 2.77, 4.96, 27.5),
}
POLICIES = ("fifo", "srtf", "las", "drf", "gavel", "themis", "allox", "shockwave", "stretto")
ABLATION = {
    "stretto (full: hybrid)": ("bayesian-regime", {}),
    "- regime predictor (current-batch)": ("current-batch", {}),
    "+ oracle schedule (planned-schedule)": ("planned-schedule", {}),
    "market only (planner=market)": ("bayesian-regime", {"planner": "market"}),
    "market - makespan term (k = 0)": ("bayesian-regime", {"planner": "market", "market": {"makespan_weight": 0.0}}),
    "market - fairness weights (λ = 0)": (
        "bayesian-regime",
        {"planner": "market", "market": {"fairness_exponent": 0.0}},
    ),
    "market - stickiness": ("bayesian-regime", {"planner": "market", "market": {"stickiness": 0.0}}),
    "market, integer rounds (SCIP)": ("bayesian-regime", {"planner": "market", "market": {"solver": "SCIP"}}),
    "classes only (planner=heuristic)": ("bayesian-regime", {"planner": "heuristic"}),
    "- urgent class (tail + SRPT)": ("bayesian-regime", {"fairness": False}),
    "- makespan tail class": ("bayesian-regime", {"makespan_tail": False}),
    "smoothed 1/N target (old heuristic)": ("bayesian-regime", {"fair_target": "smoothed", "rho_max": 1.0}),
}
# seed, jobs, mean inter-arrival s, held out (never used to choose `stretto`'s defaults)
COMBINED_SPECS = (
    (1, 200, 15.0, False),
    (2, 200, 15.0, False),
    (3, 160, 20.0, False),
    *((seed, 200, 15.0, False) for seed in range(4, 9)),  # held out at first, then used to tune the defaults
    *((seed, 200, 15.0, True) for seed in range(9, 13)),  # held out: never used to tune anything
)
COMBINED_POLICIES = ("fifo", "gavel", "themis", "allox", "shockwave", "stretto", "elastic")
COMBINED_PACKERS = ("proportional", "synergy-tune")
COMBINED_ABLATION = {
    "stretto (full: hybrid, delivered)": ("bayesian-regime", {}),
    "- resource-aware (proportional speed)": ("bayesian-regime", {"resource_aware": False}),
    "ideal speed-up (not delivered)": ("bayesian-regime", {"resource_estimate": "ideal"}),
    "+ gain order for the packer": ("bayesian-regime", {"pack_order": "gain"}),
    "- regime predictor (current-batch)": ("current-batch", {}),
    "market only (planner=market)": ("bayesian-regime", {"planner": "market"}),
    "classes only (planner=heuristic)": ("bayesian-regime", {"planner": "heuristic"}),
    "- urgent class (tail + SRPT)": ("bayesian-regime", {"fairness": False}),
    "- makespan tail class": ("bayesian-regime", {"makespan_tail": False}),
    "- forecast margin (rho_max = 1)": ("bayesian-regime", {"rho_max": 1.0}),
    "smoothed 1/N target (old heuristic)": ("bayesian-regime", {"fair_target": "smoothed", "rho_max": 1.0}),
    "- undo speed calibration": ("bayesian-regime", {"undo_calibration": False}),
    "- per-job delivered share": ("bayesian-regime", {"delivered_per_job": False}),
    "- finishing class (finish_rounds = 0)": ("bayesian-regime", {"finish_rounds": 0.0}),
    "tail window 40 min (old default)": ("bayesian-regime", {"tail_window_s": 2400.0}),
    "tail below the longest R̂ (old default)": ("bayesian-regime", {"tail_bound": "longest"}),
}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{platform.platform()} | {cpu} | {os.cpu_count()} CPUs | Python {platform.python_version()}"


def run(workload, book, nodes, config, *, policy: str, predictor: str, packer: str = "proportional", args=None):
    plugins = build_plugins(
        RoundConfig(
            predictor=PluginSpec(name=predictor),
            policy=PluginSpec(name=policy, args=args or {}),
            packer=PluginSpec(name=packer),
        )
    )
    return summarise(Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run())


def row(label: str, s: Summary, base: Summary | None, wall: float, peer=None) -> str:
    peer_cells = (
        f"{peer[0]:6.2f} {s.makespan_s / 3600 / peer[0]:6.3f} {peer[3]:6.1f}" if peer else f"{'-':>6} {'-':>6} {'-':>6}"
    )
    vs = f"{s.makespan_s / base.makespan_s:7.3f}" if base else f"{'-':>7}"
    return (
        f"{label:38} {s.makespan_s / 3600:8.2f} {s.avg_jct_s / 3600:7.2f} {s.worst_rho:6.2f} "
        f"{100 * s.unfair_fraction:7.1f} {peer_cells} {vs} {s.solver_p99_s:7.3f} {wall:6.1f}"
    )


HEADER = (
    f"{'':38} {'makespan':>8} {'avgJCT':>7} {'worstρ':>6} {'unfair%':>7} {'peer h':>6} {'ratio':>6} "
    f"{'peer%':>6} {'vs gavel':>7} {'p99 s':>7} {'wall':>6}"
)


def combined() -> None:
    book = load_combined_book(PEERS)
    nodes = parse_cluster_spec("4x8,cpus=24,memory=500Gi")
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20)
    head = (
        f"{'':38} {'makespan':>8} {'avgJCT':>7} {'worstρ':>6} {'unfair%':>7} {'mk/best':>7} {'jct/best':>8} {'wall':>6}"
    )
    met: list[str] = []
    for seed, jobs, iat, held_out in COMBINED_SPECS:
        workload = generate_combined(CombinedWorkloadArgs(jobs=jobs, mean_interarrival_s=iat), profiles=book, seed=seed)
        print(
            f"\n5. combined workload seed {seed}{' (held out)' if held_out else ''}, {jobs} jobs, "
            f"mean inter-arrival {iat:.0f} s "
            f"(combined:jobs={jobs},mean_interarrival_s={iat:g} --seed {seed}), 4 × (8 GPUs, 24 CPUs, 500 GiB)\n{head}"
        )
        results: dict[tuple[str, str], tuple[Summary, float]] = {}
        for policy in COMBINED_POLICIES:
            predictor = "bayesian-regime" if policy in ("shockwave", "stretto") else "planned-schedule"
            for packer in COMBINED_PACKERS:
                start = time.perf_counter()
                s = run(workload, book, nodes, config, policy=policy, predictor=predictor, packer=packer)
                results[(policy, packer)] = (s, time.perf_counter() - start)
        baselines = [s for (p, _), (s, _) in results.items() if p != "stretto"]
        best_mk = min(s.makespan_s for s in baselines)
        best_jct = min(s.avg_jct_s for s in baselines)

        def line(label: str, s: Summary, wall: float, best: tuple[float, float] = (best_mk, best_jct)) -> str:
            return (
                f"{label:38} {s.makespan_s / 3600:8.2f} {s.avg_jct_s / 3600:7.3f} {s.worst_rho:6.2f} "
                f"{100 * s.unfair_fraction:7.1f} {s.makespan_s / best[0]:7.3f} {s.avg_jct_s / best[1]:8.3f} {wall:6.1f}"
            )

        for (policy, packer), (s, wall) in results.items():
            print(line(f"{policy} × {packer}", s, wall))
        st = results[("stretto", "synergy-tune")][0]
        sw = min(results[("shockwave", k)][0].unfair_fraction for k in COMBINED_PACKERS)
        checks = (st.makespan_s <= best_mk, st.avg_jct_s <= best_jct, st.unfair_fraction <= sw)
        missed = [name for name, ok in zip(("makespan", "avg JCT", "unfair"), checks, strict=True) if not ok]
        verdict = f"MISSED ({', '.join(missed)})" if missed else "met"
        met.append(f"seed {seed}{' (held out)' if held_out else ''}: {verdict}")
        print(
            f"target: stretto × synergy-tune makespan {st.makespan_s / best_mk:.3f} and avg JCT "
            f"{st.avg_jct_s / best_jct:.3f} of the best baseline (≤ 1), unfair {100 * st.unfair_fraction:.1f}% "
            f"(shockwave's lower: {100 * sw:.1f}%): target {verdict}"
        )
        if seed > 3:  # the ablation runs on the bench's first three seeds
            continue
        print(f"stretto ablation, combined seed {seed}, synergy-tune\n{head}")
        for label, (predictor, args) in COMBINED_ABLATION.items():
            start = time.perf_counter()
            s = run(
                workload, book, nodes, config, policy="stretto", predictor=predictor, packer="synergy-tune", args=args
            )
            print(line(label, s, time.perf_counter() - start))
    print("\n5. issue 4 target per seed: " + "; ".join(met))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the generated traces, Synergy's trace, combined")
    parser.add_argument("--combined-only", action="store_true", help="only the combined workload (section 5)")
    opts = parser.parse_args()
    print(machine())
    if opts.combined_only:
        combined()
        return
    book = load_profile_book(PEERS / "shockwave")
    nodes = parse_cluster_spec("32x1")
    # Shockwave's simulator switches batch sizes between rounds, one round late (see SimulationConfig).
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20, batch_switch="round")
    workload = read_workload(TRACE, book)

    print(f"\n1. Shockwave's 120-job trace, 32 GPUs, 120 s rounds, 20 s restore, batch switch per round\n{HEADER}")
    results: dict[str, Summary] = {}
    for policy in ("gavel", *[p for p in POLICIES if p != "gavel"]):
        predictor = "bayesian-regime" if policy in ("shockwave", "stretto") else "planned-schedule"
        start = time.perf_counter()
        s = run(workload, book, nodes, config, policy=policy, predictor=predictor)
        results[policy] = s
        print(row(f"{policy} ({predictor})", s, results["gavel"], time.perf_counter() - start, PEER.get(policy)))
    sw, st = results["shockwave"], results["stretto"]
    print(
        f"targets: shockwave makespan ratio {sw.makespan_s / 3600 / 6.64:.3f} (within 0.95-1.05), "
        f"unfair {100 * sw.unfair_fraction:.1f}% (≤ 7.5%); stretto {st.makespan_s / 3600:.2f} h (< 6.64), "
        f"unfair {100 * st.unfair_fraction:.1f}% (≤ 5%)"
    )

    print(f"\n3. stretto ablation, 120-job trace\n{HEADER}")
    base = None
    for label, (predictor, args) in ABLATION.items():
        start = time.perf_counter()
        s = run(workload, book, nodes, config, policy="stretto", predictor=predictor, args=args)
        base = base or s
        print(row(label, s, results["gavel"], time.perf_counter() - start))

    if opts.quick:
        return
    print(f"\n2. generated Shockwave-style traces (seed, jobs, mean inter-arrival), 32 GPUs\n{HEADER}")
    for seed, jobs, iat in ((1, 120, 40.0), (2, 120, 30.0), (3, 160, 40.0)):
        generated = generate_shockwave(
            ShockwaveWorkloadArgs(jobs=jobs, mean_interarrival_s=iat), profiles=book, seed=seed
        )
        gavel = None
        for policy in ("gavel", "themis", "shockwave", "stretto"):
            predictor = "bayesian-regime" if policy in ("shockwave", "stretto") else "planned-schedule"
            start = time.perf_counter()
            s = run(generated, book, nodes, config, policy=policy, predictor=predictor)
            gavel = gavel or s
            print(row(f"seed {seed} n={jobs} iat={iat:.0f} {policy}", s, gavel, time.perf_counter() - start))

    print(f"\n4. Synergy's static trace, 4 × (8 GPUs, 24 CPUs, 500 GB), 300 s rounds\n{HEADER}")
    sbook = load_profile_book(PEERS / "synergy" / "model_profiles.json")
    swork = read_workload(PEERS / "synergy" / "static_100job_6_3_1100.0.csv", sbook)
    snodes = parse_cluster_spec(str(PEERS / "synergy" / "clusters" / "static_trace.ini"))
    sconfig = SimulationConfig(round_seconds=300, finish_at_round_end=True)
    tune = None
    for policy in ("fifo", "srtf", "shockwave", "stretto"):
        start = time.perf_counter()
        s = run(swork, sbook, snodes, sconfig, policy=policy, predictor="bayesian-regime", packer="synergy-tune")
        tune = tune or s
        print(row(f"{policy} + synergy-tune", s, None, time.perf_counter() - start))
        if policy == "stretto":
            print(f"stretto / (fifo + synergy-tune) makespan {s.makespan_s / tune.makespan_s:.3f} (target ≤ 1)")
    combined()


if __name__ == "__main__":
    main()
