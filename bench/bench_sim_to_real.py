"""Sim-to-real: the demo workload live on a local control plane against `stretto simulate` on the same jobs.

Starts its own dev cluster (4 kwok nodes x 8 GPUs) in a temporary directory, Stretto's extender, operator
and training emulator, and plays manifests/demo/workload.jsonl exactly as `stretto demo` does (the same
code: `stretto.devcluster.demo.run_workload`), then prints makespan and average JCT live and simulated
(training seconds: wall x time scale) with their ratios. Target (issue 6): within 5 % (aim 3 %). The
simulator is calibrated with the live run's measured start latency and mean resize pause; the comparison
without overheads is printed too. Takes several
minutes; the cluster is stopped at the end, also on failure or Ctrl-C.

    .venv/bin/python bench/bench_sim_to_real.py [--time-scale 30] [--round-seconds 3] [--out out/sim-to-real]
        [--policy stretto --packer synergy-tune]   # default: the operator's round
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

from stretto.devcluster import demo
from stretto.devcluster.cluster import DevCluster


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-scale", type=float, default=30)
    parser.add_argument("--round-seconds", type=float, default=3)
    parser.add_argument("--checkpoint-notice", type=float, default=1.0)
    parser.add_argument("--workload", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("out/sim-to-real"))
    parser.add_argument("--timeout", type=float, default=900, help="wall seconds for the live run")
    parser.add_argument("--policy", default=None, help="the round's policy (default: the operator's)")
    parser.add_argument("--packer", default=None, help="the round's packer (default: the operator's)")
    args = parser.parse_args()
    print(describe())
    with tempfile.TemporaryDirectory(prefix="stretto-bench-s2r-") as tmp:
        demo_parser = argparse.ArgumentParser()
        demo.register(demo_parser.add_subparsers())
        demo_args = demo_parser.parse_args([
            "demo", "--run-dir", tmp, "--out", str(args.out), "--time-scale", str(args.time_scale),
            "--round-seconds", str(args.round_seconds), "--checkpoint-notice", str(args.checkpoint_notice),
            "--timeout", str(args.timeout), *(["--workload", str(args.workload)] if args.workload else []),
            *(["--policy", args.policy] if args.policy else []), *(["--packer", args.packer] if args.packer else [])])
        cluster = DevCluster(Path(tmp))
        try:
            state = cluster.up(4, 8, progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
            demo.run_workload(cluster, state, demo_args)
        finally:
            cluster.down(progress=lambda msg: print(f"[dev-cluster] {msg}", file=sys.stderr))
    records = {r["run"]: r for r in json.loads((args.out / "results.json").read_text())}
    live, sim, bare = records["live"], records["simulated"], records["simulated-no-overhead"]
    print(f"\nsim-to-real, {live['policy']} x {live['packer']} (predictor {live['predictor']}), "
          f"{live['jobs']} jobs, time scale {live['time_scale']:g}, round "
          f"{live['round_seconds_wall']:g} wall s ({live['round_seconds_wall'] * live['time_scale']:g} training s):")
    calibrated = (f"restore = measured start latency {sim['sim_restore_overhead_s']:.0f} s, resize = mean measured "
                  f"pause {sim.get('sim_resize_overhead_s', 0):.0f} s over {sim.get('resizes', 0)} resizes")
    for label, reference in ((calibrated, sim), ("no overheads", bare)):
        print(f"  vs simulated ({label}): "
              f"makespan {live['makespan_s'] / 3600:.3f} h / {reference['makespan_s'] / 3600:.3f} h = "
              f"{live['makespan_s'] / reference['makespan_s']:.3f}; avg JCT {live['avg_jct_s'] / 3600:.3f} h / "
              f"{reference['avg_jct_s'] / 3600:.3f} h = {live['avg_jct_s'] / reference['avg_jct_s']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
