"""Chaos: the demo workload live while the operator, the extender, kube-apiserver and etcd are killed.

One dev cluster (4 kwok nodes x 8 GPUs) for every run, in a temporary directory. First a run without
faults (the makespan baseline), then for each seed: one operator, SIGKILLed `--operator-kills` times
at random moments, the extender `--extender-kills` times, kube-apiserver and etcd restarted once each
(the first seed also sends `--fuzz` bad requests to the extender); and two operator replicas with the
leader killed `--leader-kills` times, with the same extender and control-plane faults. Every run
prints jobs Succeeded, invariant violations (a poll every 2 s: duplicate ranks, workers over the
allocation, orphans, a GPU on two pods, progress going backwards) and its makespan against the
baseline's. Targets (issue 17): 20/20 Succeeded every time, no violation, makespan within 1.3x.
Every process a run starts is stopped at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/bench_chaos.py [--seeds 1,2,3] [--replicas 1,2] [--fuzz 3000]   # or: make chaos
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

from stretto.devcluster.chaos import FaultPlan
from stretto.devcluster.chaos_run import ChaosOutcome, ChaosSettings, run_chaos
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.demo_workload import DEMO_WORKLOAD, Compression


def line(label: str, outcome: ChaosOutcome, baseline_makespan: float | None) -> str:
    ratio = (f"{outcome.makespan_s / baseline_makespan:.3f}x" if outcome.makespan_s and baseline_makespan
             else "n/a")
    kinds: dict[str, int] = {}
    for violation in outcome.violations:
        kinds[violation.kind] = kinds.get(violation.kind, 0) + 1
    faults = ", ".join(f"{k} {v}" for k, v in sorted(outcome.fired.items())) or "none"
    return (f"{label:<22} {outcome.succeeded}/{outcome.jobs} Succeeded, violations {kinds or 0}, "
            f"{outcome.listings} polls, makespan {ratio} of no faults, {outcome.wall_s:.0f} wall s; "
            f"faults: {faults}")


def print_fuzz(outcome: ChaosOutcome) -> None:
    fuzz = outcome.fuzz
    print(f"  fuzz: {fuzz.line()} ({outcome.fuzz_unanswered_while_killed} while the chaos had "
          f"the extender killed, {len(outcome.fuzz_unanswered_otherwise)} otherwise); "
          f"{len(outcome.fuzz_disallowed)} binds the API's pod would not allow; extender log "
          f"{outcome.log_bytes_per_bad_request or 0:.0f} bytes per bad request; "
          f"by kind {dict(sorted(fuzz.by_kind.items()))}")
    problems = fuzz.server_errors + fuzz.slow + outcome.fuzz_disallowed + outcome.fuzz_unanswered_otherwise
    for problem in problems[:10]:
        print(f"    {problem}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", type=Path, default=DEMO_WORKLOAD)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--operator-kills", type=int, default=30)
    parser.add_argument("--extender-kills", type=int, default=5)
    parser.add_argument("--leader-kills", type=int, default=10)
    parser.add_argument("--replicas", default="1,2", help="which runs per seed: one operator, two, or both")
    parser.add_argument("--fuzz", type=int, default=3000, help="bad requests sent to the extender (first seed)")
    parser.add_argument("--time-scale", type=float, default=30.0)
    parser.add_argument("--round-seconds", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=1500.0, help="wall seconds per run")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still stops the cluster (finally)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    replicas = {int(r) for r in args.replicas.split(",") if r}
    compression = Compression(time_scale=args.time_scale, round_seconds=args.round_seconds)
    print(describe())
    print(f"workload {args.workload}, {compression.time_scale:g} training s per wall s, rounds of "
          f"{compression.round_seconds:g} wall s")
    progress = lambda msg: print(f"  [{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr)  # noqa: E731
    results: list[tuple[str, ChaosOutcome]] = []
    with tempfile.TemporaryDirectory(prefix="stretto-bench-chaos-") as tmp:
        cluster = DevCluster(Path(tmp))
        try:
            state = cluster.up(4, 8, progress=progress)

            def run(label: str, plan: FaultPlan, seed: int, replicas: int, fuzz: int) -> ChaosOutcome:
                settings = ChaosSettings(workload=args.workload, plan=plan, seed=seed, replicas=replicas,
                                         compression=compression, fuzz_requests=fuzz, timeout_s=args.timeout)
                load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
                progress(f"{label}: starting ({load})")
                outcome = run_chaos(cluster, cluster.load_state() or state, settings, progress=progress)
                results.append((label, outcome))
                print(line(label, outcome, results[0][1].makespan_s if results else None), flush=True)
                return outcome

            baseline = run("no faults", FaultPlan(0, 0, 0, 0), 0, 1, 0)
            for seed in seeds:
                if 1 in replicas:
                    single = FaultPlan(args.operator_kills, args.extender_kills, 1, 1)
                    outcome = run(f"seed {seed}, 1 replica", single, seed, 1, args.fuzz if seed == seeds[0] else 0)
                    if outcome.fuzz.sent:
                        print_fuzz(outcome)
                if 2 in replicas:
                    pair = FaultPlan(args.leader_kills, args.extender_kills, 1, 1)
                    run(f"seed {seed}, 2 replicas", pair, seed, 2, 0)
        finally:
            cluster.down(progress=progress)
    print("\nsummary")
    for label, outcome in results:
        print(line(label, outcome, baseline.makespan_s))
        for violation in outcome.violations[:5]:
            print(f"    {violation.kind}: {violation.detail}")
    return 0 if all(o.clean for _, o in results) else 1


if __name__ == "__main__":
    sys.exit(main())
