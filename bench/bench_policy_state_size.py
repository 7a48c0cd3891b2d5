"""The policy state's size in its ConfigMap, per policy, at growing job counts, against the API's limit.

The leader writes each round's policy state (`operator/policy_store.py`) as compressed JSON into one
ConfigMap, and a ConfigMap holds at most 1 MiB. For each policy and each `--sizes` job count, three rounds
run on the core (jobs from the Synergy generator, multi-GPU, on count/4 nodes x 8 GPUs, one-hour arrivals
so all are active) and the third round's state is encoded exactly as the store writes it. Prints the
ConfigMap's bytes, the ratio to the limit, and the raw JSON's size (what compression saves).

    .venv/bin/python bench/bench_policy_state_size.py [--sizes 1000,5000,10000]
"""

from __future__ import annotations

import argparse
import json
import time

from bench_round_time import jobs_at_scale  # bench/bench_round_time.py
from machine_info import describe  # bench/machine_info.py

from stretto.core.registries import PluginSpec, builtin_policies
from stretto.core.rounds import RoundConfig, build_plugins, run_round
from stretto.core.snapshots import ClusterSnapshot
from stretto.operator.policy_store import CONFIGMAP_LIMIT, StoredRounds, encode, stored_bytes
from stretto.sim.clusters import parse_cluster_spec

PACKER = "proportional"


def state_after_rounds(policy: str, count: int, rounds: int = 3) -> tuple[dict, float]:
    """The last round's policy state, and the mean seconds per round (`run_round` alone)."""
    nodes = parse_cluster_spec(f"{max(count // 4, 1)}x8,cpus=24,memory=500Gi")
    jobs = jobs_at_scale(count)
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy), packer=PluginSpec(name=PACKER)))
    previous, state = {}, {}
    now = max(j.arrival_s for j in jobs)
    started = time.perf_counter()
    for index in range(rounds):
        decision = run_round(ClusterSnapshot(now_s=now + 60.0 * index, round_index=index, round_seconds=60.0,
                                             jobs=tuple(jobs), nodes=nodes, previous=previous, policy_state=state,
                                             total_jobs_seen=len(jobs)), plugins)
        previous, state = dict(decision.allocations), decision.policy_state
    return dict(state), (time.perf_counter() - started) / rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(describe())
    print(f"policy state in ConfigMap stretto-policy-state after 3 rounds ({PACKER} packer); limit 1 MiB")
    print(f"{'policy':10} {'jobs':>6} {'ConfigMap':>10} {'vs limit':>9} {'raw JSON':>10} {'round s':>8}")
    worst = 0.0
    for policy in builtin_policies().names():
        for count in sizes:
            state, seconds = state_after_rounds(policy, count)
            content = encode(StoredRounds(scheduler="{}", next_round=3, state=state), leader="bench")
            size = stored_bytes(content)
            worst = max(worst, size / CONFIGMAP_LIMIT)
            raw = len(json.dumps(state, separators=(",", ":")))
            print(f"{policy:10} {count:6d} {size / 1024:8.1f}Ki {size / CONFIGMAP_LIMIT:8.3f}x "
                  f"{raw / 1024:8.1f}Ki {seconds:8.2f}", flush=True)
    print(f"largest: {worst:.3f}x of the ConfigMap limit")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
