"""How long the dev cluster takes to build and to start, cold and warm.

    python bench/bench_devcluster.py            # warm build (cache hit) and up/down, 3 runs each
    python bench/bench_devcluster.py --cold     # also a cold build: empty Go build, module and binary
                                                # caches in a temporary directory (15-20 min on 2 cores)

"Cold up" is the first `up` into a new run directory (fresh PKI, fresh etcd); "warm up" is an `up`
into a run directory whose cluster was just stopped. The baseline for each figure is the warm
figure of the same run, printed as a ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

from stretto.devcluster.binaries import build_binaries
from stretto.devcluster.cluster import DevCluster


def machine() -> str:
    go = subprocess.run(["go", "version"], capture_output=True, text=True).stdout.strip()
    return f"{describe()} | {go}"


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def cold_build_seconds() -> float:
    with tempfile.TemporaryDirectory(prefix="stretto-cold-") as scratch:
        env = dict(os.environ, STRETTO_CACHE_DIR=f"{scratch}/cache", GOCACHE=f"{scratch}/gocache",
                   GOMODCACHE=f"{scratch}/gomodcache")
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stretto.cli", "dev-cluster", "build"], env=env, check=True)
        elapsed = time.perf_counter() - started
        subprocess.run(["go", "clean", "-modcache"], env=env, check=False)  # module files are read-only
        return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a build from empty caches")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=4)
    args = parser.parse_args()
    quiet = lambda _msg: None  # noqa: E731

    print(f"machine: {machine()}")
    build_binaries(print)  # make sure the cache is filled before timing the warm path
    warm_build = statistics.median(timed(lambda: build_binaries(quiet)) for _ in range(args.runs))
    cold_ups, warm_ups, downs = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="stretto-bench-") as run_dir:
            cluster = DevCluster(Path(run_dir))
            cold_ups.append(timed(lambda c=cluster: c.up(nodes=args.nodes, progress=quiet)))
            downs.append(timed(lambda c=cluster: c.down(progress=quiet)))
            warm_ups.append(timed(lambda c=cluster: c.up(nodes=args.nodes, progress=quiet)))
            downs.append(timed(lambda c=cluster: c.down(progress=quiet)))
    cold_up, warm_up = statistics.median(cold_ups), statistics.median(warm_ups)
    print(f"warm build (cache hit):      {warm_build * 1000:8.1f} ms   (median of {args.runs})")
    print(f"cold up (new run dir):       {cold_up:8.2f} s    (median of {args.runs}; runs {cold_ups})")
    print(f"warm up (restart):           {warm_up:8.2f} s    (median; ratio cold/warm {cold_up / warm_up:.2f})")
    print(f"down:                        {statistics.median(downs):8.2f} s    (median)")
    if args.cold:
        cold = cold_build_seconds()
        print(f"cold build (empty caches):   {cold / 60:8.1f} min  (ratio to a warm up: {cold / warm_up:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
