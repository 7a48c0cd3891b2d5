"""Overhead of the Stretto shim on the fake CUDA driver: shim against no shim, same driver.

Runs gpu_interceptor/native/build/bench/bench_shim (pointers from cuGetProcAddress_v2, as cudart
12 calls the driver; one thread pinned to CPU 0) in three configurations, several times each,
and prints the medians and the added cost per call:

  baseline         no LD_PRELOAD
  shim, no cap     STRETTO_FAILSAFE=open + a memory cap only (the launch path sees rate 0)
  shim, bucket     + a utilization limit whose rate is far above the launch rate, so every launch
                   pays the bucket (clock read, refill, charge) but never sleeps

Targets from the issue (reference/gpu-shim.md O1/O2): <= 20 ns per cuLaunchKernel with no cap,
<= 100 ns with the bucket active, <= 1 us per allocate/free pair.

    python bench/bench_shim.py [--runs 7] [--iters 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from machine_info import describe  # bench/machine_info.py

REPO = Path(__file__).resolve().parents[1]
NATIVE = REPO / "gpu_interceptor" / "native"
BUILD = NATIVE / "build"


def run_once(env: dict[str, str], iters: int) -> dict[str, float]:
    out = subprocess.run([str(BUILD / "bench" / "bench_shim"), "--iters", str(iters), "--repeats", "5"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iters", type=int, default=200_000)
    args = parser.parse_args()
    subprocess.run(["make", "-C", str(NATIVE), "-j2"], check=True, capture_output=True)
    tmp = Path(tempfile.mkdtemp(prefix="stretto-bench-"))
    (tmp / "fake.conf").write_text(f"gpu = Bench GPU, 80Gi\ntimeline = {tmp / 'timeline'}\nblock_time_us = 0\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRETTO_") and k != "LD_PRELOAD"}
    base |= {"STRETTO_FAKE_GPU_CONFIG": str(tmp / "fake.conf"), "LD_LIBRARY_PATH": str(BUILD / "fake")}
    shim = {"LD_PRELOAD": str(BUILD / "libstretto-cuda.so"), "STRETTO_GPU_MEMORY_LIMIT": "64Gi"}
    configs = {
        "baseline": base,
        "shim, no cap": base | shim | {"STRETTO_LEDGER_FILE": str(tmp / "l1")},
        # 1e12 tokens/s per percent: the bucket is charged on every launch but never runs dry.
        "shim, bucket": base | shim | {"STRETTO_LEDGER_FILE": str(tmp / "l2"), "STRETTO_GPU_UTILIZATION_LIMIT": "100",
                                       "STRETTO_INITIAL_TOKENS_PER_PERCENT": "10000000000",
                                       "LD_LIBRARY_PATH": "/nonexistent"},
    }
    results: dict[str, dict[str, float]] = {}
    for name, env in configs.items():
        if name == "shim, bucket":  # the fake driver must still be found, NVML must not (fixed rate)
            env = env | {"LD_LIBRARY_PATH": str(BUILD / "fake")}
        runs = [run_once(env, args.iters) for _ in range(args.runs)]
        results[name] = {k: statistics.median(r[k] for r in runs)
                         for k in ("launch_ns", "alloc_free_ns", "mem_get_info_ns")}
    print(f"machine: {describe()}")
    print(f"medians of {args.runs} runs x 5 repeats, {args.iters} launches per repeat, fake driver, 1 thread")
    print(f"{'ns/call':<22}{'baseline':>10}{'shim':>10}{'added':>8}{'bucket':>10}{'added':>8}   target")
    b, s, k = results["baseline"], results["shim, no cap"], results["shim, bucket"]
    rows = [("cuLaunchKernel", "launch_ns", "<=20 / <=100 ns"), ("alloc+free pair", "alloc_free_ns", "<=1000 ns"),
            ("cuMemGetInfo", "mem_get_info_ns", "<=200 ns")]
    for label, key, target in rows:
        print(f"{label:<22}{b[key]:>10.1f}{s[key]:>10.1f}{s[key] - b[key]:>+8.1f}{k[key]:>10.1f}"
              f"{k[key] - b[key]:>+8.1f}   {target}")
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
