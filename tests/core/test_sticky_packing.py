"""Packing where workers cannot move (a live cluster): running workers stay put, only new ones are placed."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stretto.core.builders import CPU_HUNGRY, make_job, make_nodes, make_profile, make_snapshot
from stretto.core.decisions import ShareRequest, Shares
from stretto.core.profiles import ResourceSensitivity
from stretto.core.registries import PluginSpec, builtin_packers, builtin_policies
from stretto.core.rounds import RoundConfig, build_plugins, run_round
from stretto.core.snapshots import JobAllocation, WorkerPlacement

PACKERS = builtin_packers().names()
HUNGRY = make_profile("hungry", sensitivity=CPU_HUNGRY)


def running(job_id: str, *workers: tuple[str, tuple[int, ...]], cpus: float = 3.0, memory: float = 50.0):
    placements = tuple(WorkerPlacement(n, g, cpus * len(g), memory * len(g)) for n, g in workers)
    return job_id, JobAllocation(job_id, placements)


def pack(packer: str, jobs, requests: dict[str, int], previous: dict, *, nodes=None, can_move: bool = False):
    snapshot = make_snapshot(jobs, nodes=nodes or make_nodes(2, gpus=4), previous=previous,
                             workers_can_move=can_move)
    shares = Shares(tuple(ShareRequest(job_id, gpus) for job_id, gpus in requests.items()))
    return builtin_packers().build(packer).pack(snapshot, shares)


def where(placement, job_id: str) -> list[tuple[str, tuple[int, ...]]]:
    allocation = {a.job_id: a for a in placement.allocations}[job_id]
    return [(w.node, w.gpu_indices) for w in allocation.workers]


@pytest.mark.parametrize("packer", PACKERS)
def test_a_running_job_stays_where_it_runs(packer: str) -> None:
    # From scratch, best fit would put a (2 GPUs) on n0; it runs on n1's GPUs 2 and 3, so it stays there.
    previous = dict([running("a", ("n1", (2,)), ("n1", (3,)))])
    jobs = [make_job("a", gpus=2), make_job("b", gpus=4)]
    placement = pack(packer, jobs, {"b": 4, "a": 2}, previous)
    assert where(placement, "a") == [("n1", (2,)), ("n1", (3,))]
    assert {node for node, _ in where(placement, "b")} == {"n0"}


@pytest.mark.parametrize("packer", PACKERS)
def test_migration_re_places_from_scratch(packer: str) -> None:
    previous = dict([running("a", ("n1", (2,)), ("n1", (3,)))])
    placement = pack(packer, [make_job("a", gpus=2)], {"a": 2}, previous, can_move=True)
    from_scratch = pack(packer, [make_job("a", gpus=2)], {"a": 2}, {}, can_move=True)
    assert where(placement, "a") == where(from_scratch, "a") != [("n1", (2,)), ("n1", (3,))]


def test_a_growing_job_keeps_its_workers_first_and_gains_new_ones() -> None:
    previous = dict([running("e", ("n1", (0,)), ("n1", (1,)))])
    job = make_job("e", gpus=5, min_workers=1)
    placement = pack("proportional", [job], {"e": 5}, previous)
    got = where(placement, "e")
    assert got[:2] == [("n1", (0,)), ("n1", (1,))]
    assert len(got) == 5 and len(set(got)) == 5


def test_a_shrinking_job_keeps_its_lowest_workers() -> None:
    previous = dict([running("e", ("n0", (0,)), ("n1", (0,)), ("n1", (1,)))])
    placement = pack("proportional", [make_job("e", gpus=3, min_workers=1)], {"e": 2}, previous)
    assert where(placement, "e") == [("n0", (0,)), ("n1", (0,))]


def test_a_worker_on_a_vanished_node_is_placed_again() -> None:
    previous = dict([running("a", ("gone", (0,)), ("n1", (1,)))])
    placement = pack("proportional", [make_job("a", gpus=2)], {"a": 2}, previous)
    got = where(placement, "a")
    assert got[0] == ("n1", (1,)) and len(got) == 2 and got[1][0] in {"n0", "n1"}


def test_a_job_that_cannot_grow_runs_on_what_it_kept() -> None:
    # n0 is full with b; e holds 2 GPUs on n1 and asks for 6, but only 2 more are free.
    previous = dict([running("b", *[("n0", (i,)) for i in range(4)]), running("e", ("n1", (0,)), ("n1", (1,)))])
    jobs = [make_job("b", gpus=4), make_job("e", gpus=6, min_workers=2)]
    placement = pack("proportional", jobs, {"b": 4, "e": 6}, previous)
    assert where(placement, "e") == [("n1", (0,)), ("n1", (1,))]


def test_a_job_below_its_minimum_waits_and_frees_what_it_kept() -> None:
    # a's second worker was on a node that is gone; no room for it elsewhere: a waits, c gets its GPU.
    previous = dict([running("b", *[("n0", (i,)) for i in range(3)]), running("a", ("n0", (3,)), ("gone", (0,)))])
    jobs = [make_job("b", gpus=3), make_job("a", gpus=2), make_job("c", gpus=1)]
    placement = pack("proportional", jobs, {"b": 3, "a": 2, "c": 1}, previous, nodes=make_nodes(1, gpus=4))
    assert "a" in placement.unplaced
    assert where(placement, "c") == [("n0", (3,))]


def test_tune_never_lowers_a_running_workers_cpus() -> None:
    # a runs at its ideal 6 CPUs per GPU; the newcomer's revert step may lower only workers it can place again.
    nodes = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
    previous = dict([running("a", ("n0", (0,)), cpus=6.0, memory=100.0)])
    jobs = [make_job("a", profile=HUNGRY), make_job("b", profile=HUNGRY), make_job("c", gpus=2)]
    placement = pack("synergy-tune", jobs, {"a": 1, "b": 1, "c": 2}, previous, nodes=nodes)
    a = {x.job_id: x for x in placement.allocations}["a"]
    assert a.workers[0].cpus == 6.0
    used = sum(w.cpus for x in placement.allocations for w in x.workers)
    assert used <= 12.0 + 1e-9


@pytest.mark.parametrize(("policy", "packer"), list(itertools.product(["fifo", "elastic", "stretto"], PACKERS)))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), sizes=st.lists(st.tuples(st.integers(1, 4), st.sampled_from([1, 2])),
                                                    min_size=1, max_size=8))
def test_two_rounds_keep_every_worker_that_still_runs(policy: str, packer: str, seed: int, sizes) -> None:
    """Round 2 keeps each job's round-1 workers unless the job shrank or stopped; no GPU is booked twice."""
    nodes = make_nodes(3, gpus=4)
    jobs = [
        make_job(f"j{i}", gpus=w * g, gpus_per_worker=g, min_workers=1 + (seed + i) % w, arrival_s=float(i),
                 samples=1000.0 * (1 + (seed * 7 + i) % 5))
        for i, (w, g) in enumerate(sizes)
    ]
    plugins = build_plugins(RoundConfig.model_validate({"policy": {"name": policy}, "packer": {"name": packer}}))
    first = run_round(make_snapshot(jobs[: max(1, len(jobs) // 2)], nodes=nodes, workers_can_move=False), plugins)
    second_snapshot = make_snapshot(jobs, nodes=nodes, previous=first.allocations, round_index=1,
                                    workers_can_move=False)
    second = run_round(second_snapshot, plugins)
    booked: set[tuple[str, int]] = set()
    for job_id, allocation in second.allocations.items():
        for w in allocation.workers:
            for g in w.gpu_indices:
                assert (w.node, g) not in booked
                booked.add((w.node, g))
        before = first.allocations.get(job_id)
        if before is not None:
            kept = min(len(before.workers), len(allocation.workers))
            assert allocation.workers[:kept] == before.workers[:kept]


def test_the_policies_are_all_covered() -> None:
    assert {"fifo", "elastic", "stretto"} <= set(builtin_policies().names())


def test_tune_grants_no_cpu_from_a_free_gpus_share_where_workers_cannot_move() -> None:
    # 4 GPUs, 12 CPUs, 400 GiB: 3 CPUs and 100 GiB per GPU. The hungry job's ideal (6 CPUs) would leave
    # the 3 other GPUs 6 CPUs, and pinned it could never be reverted; it gets the proportional 3.
    nodes = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
    pinned = {x.job_id: x for x in pack("synergy-tune", [make_job("a", profile=HUNGRY)], {"a": 1}, {},
                                        nodes=nodes).allocations}
    moving = {x.job_id: x for x in pack("synergy-tune", [make_job("a", profile=HUNGRY)], {"a": 1}, {},
                                        nodes=nodes, can_move=True).allocations}
    assert (pinned["a"].workers[0].cpus, pinned["a"].workers[0].memory_gib) == (3.0, 100.0)
    assert moving["a"].workers[0].cpus == 6.0


def test_tune_grants_the_slack_a_light_job_leaves() -> None:
    # l runs on 1 GPU with 1 CPU and 50 GiB: 11 CPUs and 350 GiB free for 3 GPUs, 2 CPUs and 50 GiB of slack.
    # a (ideal 6 CPUs, 100 GiB) gets 3 + 2 CPUs and its 100 GiB; c's 2 GPUs still get their 6 CPUs.
    nodes = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
    previous = dict([running("l", ("n0", (0,)), cpus=1.0, memory=50.0)])
    jobs = [make_job("l"), make_job("a", profile=HUNGRY), make_job("c", gpus=2)]
    placement = pack("synergy-tune", jobs, {"l": 1, "a": 1, "c": 2}, previous, nodes=nodes)
    got = {x.job_id: x for x in placement.allocations}
    assert (got["a"].workers[0].cpus, got["a"].workers[0].memory_gib) == (5.0, 100.0)
    assert [w.cpus for w in got["c"].workers] == [3.0, 3.0]
    assert not placement.unplaced


def test_a_pinned_hungry_job_does_not_strand_the_gpus_beside_it() -> None:
    # Round 1 places a alone; in round 2 a is pinned where it runs and b needs the other 3 GPUs at 3 CPUs each.
    nodes = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
    first = pack("synergy-tune", [make_job("a", profile=HUNGRY)], {"a": 1}, {}, nodes=nodes)
    previous = {x.job_id: x for x in first.allocations}
    second = pack("synergy-tune", [make_job("a", profile=HUNGRY), make_job("b", gpus=3)], {"a": 1, "b": 3},
                  previous, nodes=nodes)
    assert not second.unplaced
    assert sum(x.gpus for x in second.allocations) == 4


VERY_HUNGRY = ResourceSensitivity(
    cpu_per_gpu=(1.0, 3.0, 12.0), memory_gib_per_gpu=(25.0, 100.0),
    relative_throughput=((0.3, 0.4), (0.5, 1.0), (0.5, 3.0)),
    ideal_cpu_per_gpu=12.0, ideal_memory_gib_per_gpu=100.0, ideal_speedup=3.0,
)
LIGHT = ResourceSensitivity(
    cpu_per_gpu=(1.0, 3.0), memory_gib_per_gpu=(25.0, 100.0), relative_throughput=((1.0, 1.0), (1.0, 1.0)),
    ideal_cpu_per_gpu=1.0, ideal_memory_gib_per_gpu=25.0, ideal_speedup=1.0,
)


@pytest.mark.parametrize(("light_gpus", "top_up", "expected"), [
    (3, True, 9.0),   # no GPU left free: all 12 - 3 (light) = 9 CPUs are a's
    (2, True, 7.0),   # one GPU free keeps its 3 CPUs: a gets 12 - 2 - 3 = 7
    (3, False, 3.0),  # without the pass: the proportional share a was given when it was placed first
])
def test_new_workers_take_the_slack_the_round_leaves(light_gpus: int, top_up: bool, expected: float) -> None:
    # 4 GPUs, 12 CPUs, 400 GiB. a (1 GPU, ideal 12 CPUs) is placed first, when the free GPUs' shares leave no
    # slack: 3 CPUs. The light job after it takes 1 CPU per GPU, so once the round is placed there is slack.
    nodes = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
    jobs = [make_job("a", profile=make_profile("a", sensitivity=VERY_HUNGRY)),
            make_job("l", gpus=light_gpus, profile=make_profile("l", sensitivity=LIGHT))]
    snapshot = make_snapshot(jobs, nodes=nodes, workers_can_move=False)
    shares = Shares((ShareRequest("a", 1), ShareRequest("l", light_gpus)))
    packer = builtin_packers().build(PluginSpec(name="synergy-tune", args={"top_up": top_up}))
    got = {x.job_id: x for x in packer.pack(snapshot, shares).allocations}
    assert got["a"].workers[0].cpus == expected
    assert [w.cpus for w in got["l"].workers] == [1.0] * light_gpus  # never less than it was given
    used = sum(w.cpus for x in got.values() for w in x.workers)
    assert 12 - used >= 3.0 * (4 - 1 - light_gpus) - 1e-9  # every free GPU keeps its proportional share
