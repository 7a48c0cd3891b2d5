"""Property tests over every policy × packer pair: the invariants of a round's decision."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stretto.core.builders import CPU_HUNGRY, make_job, make_profile
from stretto.core.decisions import RoundDecision
from stretto.core.registries import PluginSpec, builtin_packers, builtin_policies
from stretto.core.rounds import RoundConfig, build_plugins, run_round
from stretto.core.snapshots import ClusterSnapshot, NodeState

PAIRS = list(itertools.product(builtin_policies().names(), builtin_packers().names()))
PROFILES = [make_profile("plain"), make_profile("hungry", sensitivity=CPU_HUNGRY)]


@st.composite
def snapshots(draw) -> ClusterSnapshot:
    nodes = tuple(
        NodeState(
            f"n{i}",
            draw(st.sampled_from([1, 2, 4, 8])),
            float(draw(st.integers(1, 48))),
            float(draw(st.integers(10, 800))),
        )
        for i in range(draw(st.integers(1, 3)))
    )
    jobs = []
    for i in range(draw(st.integers(1, 8))):
        gpus_per_worker = draw(st.sampled_from([1, 2]))
        workers = draw(st.integers(1, 3))
        jobs.append(
            make_job(
                f"j{i}",
                gpus=workers * gpus_per_worker,
                gpus_per_worker=gpus_per_worker,
                min_workers=draw(st.integers(1, workers)),
                arrival_s=float(draw(st.integers(0, 100))),
                samples=float(draw(st.integers(100, 10000))),
                profile=draw(st.sampled_from(PROFILES)),
                attained_gpu_seconds=float(draw(st.integers(0, 5000))),
                tenant=draw(st.sampled_from(["", "t1", "t2"])),
            )
        )
    return ClusterSnapshot(now_s=200.0, round_index=3, round_seconds=60.0, jobs=tuple(jobs), nodes=nodes)


@pytest.mark.parametrize(("policy", "packer"), PAIRS, ids=[f"{p}-{k}" for p, k in PAIRS])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=snapshots())
def test_round_invariants(policy: str, packer: str, snapshot: ClusterSnapshot) -> None:
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy), packer=PluginSpec(name=packer)))
    assert_feasible(snapshot, run_round(snapshot, plugins))


@pytest.mark.parametrize("policy", ["shockwave", "stretto"])
def test_a_real_solver_time_out_still_gives_a_feasible_round(policy: str) -> None:
    # 600 jobs on 64 GPUs with a 1 ms limit: the market's LP stops on OR-Tools' time limit, and
    # the round built on the fallback plan still satisfies every invariant.
    rng = random.Random(3)
    nodes = tuple(NodeState(f"n{i}", 8, 48.0, 500.0) for i in range(8))
    jobs = tuple(
        make_job(
            f"j{i}",
            gpus=rng.choice([1, 2, 4, 8]),
            arrival_s=float(rng.randint(0, 10_000)),
            samples=float(rng.randint(10_000, 5_000_000)),
            profile=rng.choice(PROFILES),
        )
        for i in range(600)
    )
    snapshot = ClusterSnapshot(now_s=10_000.0, round_index=5, round_seconds=120.0, jobs=jobs, nodes=nodes)
    market = {"time_limit_s": 1e-6}
    args = {"planner": "market", "market": market} if policy == "stretto" else market
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy, args=args)))
    decision = run_round(snapshot, plugins)
    stats = decision.policy_state["stats"]
    assert stats and all(label.startswith(("fallback", "feasible")) for label in stats)
    assert_feasible(snapshot, decision)
    assert sum(a.gpus for a in decision.allocations.values()) > 0


def assert_feasible(snapshot: ClusterSnapshot, decision: RoundDecision) -> None:
    nodes = {n.name: n for n in snapshot.nodes}
    jobs = {j.job_id: j for j in snapshot.jobs}
    used = {name: [0, 0.0, 0.0] for name in nodes}
    gpus_seen: set[tuple[str, int]] = set()
    for job_id, allocation in decision.allocations.items():
        job = jobs[job_id]
        # gangs whole, within the job's range, every worker on one node with its GPUs
        assert job.min_gpus <= allocation.gpus <= job.max_gpus
        for worker in allocation.workers:
            assert len(worker.gpu_indices) == job.gpus_per_worker
            for index in worker.gpu_indices:
                assert 0 <= index < nodes[worker.node].gpus
                assert (worker.node, index) not in gpus_seen, "GPU given twice"
                gpus_seen.add((worker.node, index))
            assert worker.cpus > 0 and worker.memory_gib > 0
            used[worker.node][0] += len(worker.gpu_indices)
            used[worker.node][1] += worker.cpus
            used[worker.node][2] += worker.memory_gib
    for name, (gpus, cpus, memory) in used.items():
        node = nodes[name]
        assert gpus <= node.gpus and cpus <= node.cpus + 1e-6 and memory <= node.memory_gib + 1e-6
    # every active job either runs or waits with a reason
    assert set(decision.allocations).isdisjoint(decision.waiting)
    assert set(decision.allocations) | set(decision.waiting) == set(jobs)
    assert all(decision.waiting.values())
