"""GPU sharing: the co-location table, hand-computed packings, and the invariants of every shared decision."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stretto.core.builders import CPU_HUNGRY, make_job, make_nodes, make_profile, make_snapshot
from stretto.core.colocation import CoLocationTable, load_colocation_table
from stretto.core.decisions import Placement, ShareRequest, Shares
from stretto.core.packers.proportional import ProportionalArgs, ProportionalPacker
from stretto.core.packers.synergy_tune import SynergyTuneArgs, SynergyTunePacker
from stretto.core.registries import PluginSpec, builtin_packers
from stretto.core.snapshots import ClusterSnapshot, JobAllocation, NodeState, WorkerPlacement

X, Y, Z = (make_profile(m) for m in ("x", "y", "z"))  # 100 samples/s per GPU, batch 32
HUNGRY = make_profile("hungry", sensitivity=CPU_HUNGRY)
# x+y share well (0.7 + 0.6 = 1.3), x+x only time-slices (1.0), z pairs with nothing.
TABLE = CoLocationTable(
    {
        ("x", 32, "y", 32): (0.7, 0.6),
        ("x", 32, "x", 32): (0.5, 0.5),
        ("hungry", 32, "y", 32): (0.8, 0.5),
        ("hungry", 32, "hungry", 32): (0.6, 0.6),
    }
)


def packer(kind: str = "proportional", table: CoLocationTable = TABLE, **args):
    if kind == "proportional":
        return ProportionalPacker(ProportionalArgs(share_gpus=True, **args), colocation=table)
    return SynergyTunePacker(SynergyTuneArgs(share_gpus=True, **args), colocation=table)


def shares(*requests: tuple[str, int]) -> Shares:
    return Shares(tuple(ShareRequest(job_id, gpus) for job_id, gpus in requests))


def layout(placement: Placement) -> dict[str, list[tuple]]:
    return {
        a.job_id: [(w.node, w.gpu_indices, w.cpus, w.memory_gib, w.gpu_fraction, w.shared_with) for w in a.workers]
        for a in placement.allocations
    }


# -- the co-location table ------------------------------------------------------------------------
def test_p100_entries_checked_by_hand(peers: Path) -> None:
    table = load_colocation_table(peers / "shockwave")  # p100 by default
    # Transformer bs 16 with itself: 7.5767 of 9.7609 steps/s each.
    assert table.relative_speeds(("Transformer", 16), ("Transformer", 16)) == pytest.approx((0.77623, 0.77623), 1e-4)
    # LM bs 5 (alone 91.663) beside Transformer bs 16 (alone 9.7609): 40.695 and 8.8544 steps/s.
    lm_t = table.relative_speeds(("LM", 5), ("Transformer", 16))
    assert lm_t == pytest.approx((40.6954 / 91.6627, 8.85441 / 9.76088), 1e-4)
    assert table.relative_speeds(("Transformer", 16), ("LM", 5)) == pytest.approx(lm_t[::-1])
    assert table.candidate(("LM", 5), ("Transformer", 16)) == pytest.approx(lm_t)  # 0.444 + 0.907 > 1.1
    # A batch size that was not measured reads the nearest measured one (20 → 16).
    assert table.relative_speeds(("Transformer", 20), ("Transformer", 16)) == pytest.approx((0.77623, 0.77623), 1e-4)
    # Time-slicing pairs are known but not candidates; unknown models are neither.
    assert table.relative_speeds(("ResNet-50", 128), ("LM", 5)) is not None
    assert table.candidate(("ResNet-50", 128), ("LM", 5)) is None
    assert table.relative_speeds(("GPT", 16), ("LM", 5)) is None


def test_v100_speeds_above_isolated_are_capped(peers: Path) -> None:
    # v100's Transformer bs 128: 3.66 steps/s sharing vs 1.15 alone (different campaigns) → capped at 1.
    table = load_colocation_table(peers / "shockwave" / "tacc_throughputs.json", "v100")
    assert table.relative_speeds(("Transformer", 128), ("Transformer", 128)) == (1.0, 1.0)


def test_loader_skips_unmeasured_multi_gpu_and_unbatched_entries(tmp_path: Path) -> None:
    a, b, c = "('A (batch size 8)', 1)", "('B (batch size 4)', 1)", "('A3C', 1)"
    data = {
        "p100": {
            a: {"null": 10.0, b: [6.0, 3.0], c: [5.0, 5.0], a: [0.0, 0.0]},
            b: {"null": 5.0, a: [3.0, 6.0]},
            c: {"null": 10.0, a: [5.0, 5.0]},
            "('A (batch size 8)', 2)": {"null": 18.0, "('A (batch size 8)', 2)": [9.0, 9.0]},
        }
    }
    (tmp_path / "tacc_throughputs.json").write_text(json.dumps(data))
    table = load_colocation_table(tmp_path)
    assert dict(table.speeds) == {("A", 8, "B", 4): (0.6, 0.6), ("B", 4, "A", 8): (0.6, 0.6)}
    assert table.relative_speeds(("A", 8), ("A", 8)) is None  # measured 0: did not fit together
    with pytest.raises(ValueError, match="no GPU type"):
        load_colocation_table(tmp_path, "h100")


def test_registry_builds_a_sharing_packer_from_a_table_file(tmp_path: Path) -> None:
    x, y = "('x (batch size 32)', 1)", "('y (batch size 32)', 1)"
    data = {"p100": {x: {"null": 10.0, y: [7.0, 6.0]}, y: {"null": 10.0, x: [6.0, 7.0]}}}
    (tmp_path / "t.json").write_text(json.dumps(data))
    spec = PluginSpec(name="proportional", args={"share_gpus": True, "colocation_table": str(tmp_path / "t.json")})
    built = builtin_packers().build(spec)
    assert built.colocation.relative_speeds(("x", 32), ("y", 32)) == pytest.approx((0.7, 0.6))
    assert builtin_packers().build("proportional").colocation is None  # off by default


# -- packing, by hand -----------------------------------------------------------------------------
def test_a_job_that_did_not_fit_joins_the_best_pairing_gpu() -> None:
    # One node, 2 GPUs, 6 CPUs, 100 GiB. a (z) and b (x) take GPUs 0 and 1 at 3 CPUs, 50 GiB each; c (y)
    # does not fit; it pairs with x (1.3) but not z, so it joins b's GPU 1: both get half of 3 CPUs / 50 GiB.
    jobs = [make_job("a", profile=Z), make_job("b", profile=X), make_job("c", profile=Y)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=2))
    placement = packer().pack(snapshot, shares(("a", 1), ("b", 1), ("c", 1)))
    assert layout(placement) == {
        "a": [("n0", (0,), 3.0, 50.0, 1.0, None)],
        "b": [("n0", (1,), 1.5, 25.0, 0.5, "c")],
        "c": [("n0", (1,), 1.5, 25.0, 0.5, "b")],
    }
    assert not placement.unplaced
    by_id = {a.job_id: a for a in placement.allocations}
    assert by_id["c"].gpu_share == 0.5 and by_id["c"].gpus == 1 and by_id["c"].cpu_per_gpu == 3.0
    # The makespan guard: b (10 s left alone) at 0.7 would take 14.3 s, longer than any job's 10 s, so c waits;
    # a b with 600 of 1000 samples done (4 s left, 5.7 s shared) may host.
    assert "c" in packer(guard_makespan=True).pack(snapshot, shares(("a", 1), ("b", 1), ("c", 1))).unplaced
    jobs[1] = make_job("b", profile=X, done=600.0)
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=2))
    guarded = packer(guard_makespan=True).pack(snapshot, shares(("a", 1), ("b", 1), ("c", 1)))
    assert layout(guarded)["c"] == [("n0", (1,), 1.5, 25.0, 0.5, "b")]


def test_pairs_consolidate_to_free_a_gpu_for_a_waiting_job() -> None:
    # a (x) and b (y) hold GPUs 0 and 1; d (z) pairs with nobody, so b moves onto a's GPU 0 (1.3 > 1.1)
    # and d gets GPU 1 whole at the proportional share.
    jobs = [make_job("a", profile=X), make_job("b", profile=Y), make_job("d", profile=Z)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=2))
    placement = packer().pack(snapshot, shares(("a", 1), ("b", 1), ("d", 1)))
    assert layout(placement) == {
        "a": [("n0", (0,), 1.5, 25.0, 0.5, "b")],
        "b": [("n0", (0,), 1.5, 25.0, 0.5, "a")],
        "d": [("n0", (1,), 3.0, 50.0, 1.0, None)],
    }


def test_a_gang_that_still_does_not_fit_undoes_its_consolidations() -> None:
    # a (x), b (y) on GPUs 0-1 of a 2-GPU node; g needs 2 GPUs: one pair frees only one GPU, so nothing changes.
    jobs = [make_job("a", profile=X), make_job("b", profile=Y), make_job("g", gpus=2, profile=Z)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=2))
    placement = packer().pack(snapshot, shares(("a", 1), ("b", 1), ("g", 2)))
    assert layout(placement) == {"a": [("n0", (0,), 3.0, 50.0, 1.0, None)], "b": [("n0", (1,), 3.0, 50.0, 1.0, None)]}
    assert "g" in placement.unplaced


def test_no_sharing_below_the_threshold_off_by_default_or_for_whole_gpu_jobs() -> None:
    nodes = make_nodes(1, gpus=2)
    two_x = [make_job("a", profile=X), make_job("b", profile=X), make_job("c", profile=X)]
    requests = shares(("a", 1), ("b", 1), ("c", 1))
    assert "c" in packer().pack(make_snapshot(two_x, nodes=nodes), requests).unplaced  # x+x = 1.0
    plain = builtin_packers().build("proportional")
    xy = [make_job("a", profile=X), make_job("b", profile=X), make_job("c", profile=Y)]
    assert "c" in plain.pack(make_snapshot(xy, nodes=nodes), requests).unplaced
    # a 2-GPU job never hosts, even for a partner that would pair with its model
    gang = [make_job("a", gpus=2, profile=X), make_job("c", profile=Y)]
    placement = packer().pack(make_snapshot(gang, nodes=nodes), shares(("a", 2), ("c", 1)))
    assert "c" in placement.unplaced and layout(placement)["a"][0][5] is None


def test_synergy_tune_guest_brings_half_its_ideal_demand() -> None:
    # 1 node, 2 GPUs, 20 CPUs, 300 GiB. a (hungry) gets its ideal 6 CPUs, 100 GiB; b (z) ideal = proportional
    # (10 CPUs, 150 GiB). c (y) joins a: a keeps 3 CPUs / 50 GiB, c brings half its (proportional) ideal.
    nodes = (NodeState("n0", 2, 20.0, 300.0),)
    jobs = [make_job("a", profile=HUNGRY), make_job("b", profile=Z), make_job("c", profile=Y)]
    placement = packer("synergy-tune").pack(make_snapshot(jobs, nodes=nodes), shares(("a", 1), ("b", 1), ("c", 1)))
    got = layout(placement)
    assert got["a"] == [("n0", (0,), 3.0, 50.0, 0.5, "c")]
    assert got["c"] == [("n0", (0,), 5.0, 75.0, 0.5, "a")]
    assert {a.job_id: a for a in placement.allocations}["a"].cpu_per_gpu == 6.0  # still its ideal per GPU's worth


def test_a_shared_pair_stays_put_where_workers_cannot_move() -> None:
    previous = {
        "a": JobAllocation("a", (WorkerPlacement("n0", (1,), 1.5, 25.0, 0.5, "b"),)),
        "b": JobAllocation("b", (WorkerPlacement("n0", (1,), 1.5, 25.0, 0.5, "a"),)),
    }
    jobs = [make_job("a", profile=X), make_job("b", profile=Y), make_job("d", profile=Z)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=2), previous=previous, workers_can_move=False)
    for built in (packer(), builtin_packers().build("proportional")):
        got = layout(built.pack(snapshot, shares(("b", 1), ("a", 1), ("d", 1))))
        assert got["a"] == [("n0", (1,), 1.5, 25.0, 0.5, "b")]
        assert got["b"] == [("n0", (1,), 1.5, 25.0, 0.5, "a")]
        assert got["d"] == [("n0", (0,), 3.0, 50.0, 1.0, None)]


# -- every decision with sharing on is feasible ----------------------------------------------------
@st.composite
def cases(draw) -> tuple[ClusterSnapshot, Shares]:
    nodes = tuple(
        NodeState(f"n{i}", draw(st.sampled_from([1, 2, 4])), draw(st.integers(1, 24)), draw(st.integers(10, 400)))
        for i in range(draw(st.integers(1, 3)))
    )
    jobs, requests, previous = [], [], {}
    for i in range(draw(st.integers(1, 10))):
        gpw = draw(st.sampled_from([1, 1, 2]))
        workers = draw(st.integers(1, 3))
        job = make_job(
            f"j{i}",
            gpus=workers * gpw,
            gpus_per_worker=gpw,
            min_workers=draw(st.integers(1, workers)),
            profile=draw(st.sampled_from([X, Y, Z, HUNGRY])),
        )
        jobs.append(job)
        requests.append(ShareRequest(job.job_id, gpw * draw(st.integers(job.min_workers, workers))))
    if draw(st.booleans()):  # last round's decision, shared GPUs included, as what keeps running
        first = ClusterSnapshot(0.0, 0, 60.0, tuple(jobs), nodes)
        previous = {a.job_id: a for a in packer().pack(first, Shares(tuple(requests))).allocations}
    order = draw(st.permutations(requests))
    snapshot = ClusterSnapshot(
        60.0, 1, 60.0, tuple(jobs), nodes, previous=previous, workers_can_move=draw(st.booleans())
    )
    return snapshot, Shares(tuple(order))


@pytest.mark.parametrize("kind", ["proportional", "synergy-tune"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_shared_decisions_are_feasible(kind: str, case: tuple[ClusterSnapshot, Shares]) -> None:
    snapshot, requests = case
    placement = packer(kind, min_combined_speed=1.05).pack(snapshot, requests)
    nodes = {n.name: n for n in snapshot.nodes}
    jobs = {j.job_id: j for j in snapshot.jobs}
    on_gpu: Counter[tuple[str, int]] = Counter()
    cpus: Counter[str] = Counter()
    memory: Counter[str] = Counter()
    allocations = {a.job_id: a for a in placement.allocations}
    for job_id, allocation in allocations.items():
        job = jobs[job_id]
        assert job.min_gpus <= allocation.gpus <= job.max_gpus, "gang not whole"
        for w in allocation.workers:
            assert len(w.gpu_indices) == job.gpus_per_worker
            assert w.cpus >= 0 and w.memory_gib >= 0
            cpus[w.node] += w.cpus
            memory[w.node] += w.memory_gib
            for g in w.gpu_indices:
                assert 0 <= g < nodes[w.node].gpus
                on_gpu[(w.node, g)] += 1
            if w.shared_with is None:
                assert w.gpu_fraction == 1.0
                continue
            # only 1-worker, 1-GPU jobs share, and the partner names this job on the same GPU
            assert w.gpu_fraction == 0.5 and allocation.gpus == 1 and len(allocation.workers) == 1
            (other,) = allocations[w.shared_with].workers
            assert (other.node, other.gpu_indices, other.shared_with) == (w.node, w.gpu_indices, job_id)
    assert max(on_gpu.values(), default=0) <= 2, "more than two jobs on a GPU"
    for (node, g), count in on_gpu.items():
        holders = [a for a in allocations.values() for w in a.workers if w.node == node and g in w.gpu_indices]
        assert count == 1 or all(w.shared_with for a in holders for w in a.workers), "whole-GPU job shares"
    for name, node in nodes.items():
        assert cpus[name] <= node.cpus + 1e-6 and memory[name] <= node.memory_gib + 1e-6
    assert set(allocations).isdisjoint(placement.unplaced)
