"""Table tests for each packer on tiny cases computed by hand."""

from __future__ import annotations

import pytest

from stretto.core.builders import CPU_HUNGRY, make_job, make_nodes, make_profile, make_snapshot
from stretto.core.decisions import ShareRequest, Shares
from stretto.core.registries import builtin_packers

HUNGRY = make_profile("hungry", sensitivity=CPU_HUNGRY)


def pack(packer: str, jobs, nodes):
    snapshot = make_snapshot(jobs, nodes=nodes)
    shares = Shares(tuple(ShareRequest(j.job_id, j.max_gpus) for j in jobs))
    return builtin_packers().build(packer).pack(snapshot, shares)


def layout(placement) -> dict[str, list[tuple[str, int, float, float]]]:
    return {
        a.job_id: [(w.node, len(w.gpu_indices), w.cpus, w.memory_gib) for w in a.workers] for a in placement.allocations
    }


def test_proportional_best_fit_and_spread() -> None:
    # 2 nodes × 4 GPUs, 12 CPUs, 200 GiB. a (3) → n0 (tie, lowest index); b (2) → n1 (only one with 2 free);
    # c (3): no node has 3 free → spread, fewest free first: n0 (1), then n1 (2).
    nodes = make_nodes(2, gpus=4)
    got = layout(pack("proportional", [make_job("a", gpus=3), make_job("b", gpus=2), make_job("c", gpus=3)], nodes))
    assert got["a"] == [("n0", 1, 3.0, 50.0)] * 3
    assert got["b"] == [("n1", 1, 3.0, 50.0)] * 2
    assert got["c"] == [("n0", 1, 3.0, 50.0), ("n1", 1, 3.0, 50.0), ("n1", 1, 3.0, 50.0)]


def test_best_fit_prefers_the_fullest_node() -> None:
    nodes = make_nodes(2, gpus=8)
    got = layout(pack("proportional", [make_job("big", gpus=6), make_job("x", gpus=1), make_job("y", gpus=4)], nodes))
    assert [w[0] for w in got["x"]] == ["n0"]  # n0 has 2 free, n1 has 8
    assert {w[0] for w in got["y"]} == {"n1"}


def test_gang_waits_whole_when_gpus_are_short() -> None:
    placement = pack("proportional", [make_job("a", gpus=3), make_job("b", gpus=2)], make_nodes(1, gpus=4))
    assert set(layout(placement)) == {"a"}
    assert placement.unplaced["b"] == "needs 2 GPUs; 1 free after higher-priority jobs"


# One node: 4 GPUs, 12 CPUs (3/GPU), 400 GiB (100/GPU). Hungry jobs want 6 CPUs and 100 GiB per GPU.
ONE_NODE = make_nodes(1, gpus=4, cpus=12, memory_gib=400)
MIXED = [make_job("a", profile=HUNGRY), make_job("b", profile=HUNGRY), make_job("c", profile=HUNGRY), make_job("d")]


def test_greedy_skips_jobs_whose_ideal_does_not_fit() -> None:
    placement = pack("synergy-greedy", MIXED, ONE_NODE)
    assert layout(placement) == {"a": [("n0", 1, 6.0, 100.0)], "b": [("n0", 1, 6.0, 100.0)]}
    assert set(placement.unplaced) == {"c", "d"}  # two GPUs idle: no CPU left


def test_tune_reverts_peers_to_proportional() -> None:
    # c: ideal fails, lowered (3 CPUs) fails, revert a (excess 3 covers the shortfall of 3) → c at 3.
    # d: proportional fails; walk by most CPU per GPU: b (6) is reverted → d at 3.
    got = layout(pack("synergy-tune", MIXED, ONE_NODE))
    assert got == {job: [("n0", 1, 3.0, 100.0)] for job in "abcd"}


def test_tune_keeps_ideal_when_it_fits() -> None:
    got = layout(pack("synergy-tune", MIXED[:2], ONE_NODE))
    assert got == {"a": [("n0", 1, 6.0, 100.0)], "b": [("n0", 1, 6.0, 100.0)]}


def test_opt_chooses_cells_to_maximise_throughput() -> None:
    # 2 GPUs, 9 CPUs, 200 GiB (4.5 CPUs, 100 GiB per GPU). Both at 3 CPUs: 1.0 + 1.0; one at 6 CPUs/100 GiB
    # (2.0) and the other at 3 CPUs/50 GiB (1.0): 3.0 with 9 CPUs and 150 GiB — the optimum.
    nodes = make_nodes(1, gpus=2, cpus=9, memory_gib=200)
    got = layout(pack("synergy-opt", [make_job("a", profile=HUNGRY), make_job("b", profile=HUNGRY)], nodes))
    cells = sorted((w[2], w[3]) for workers in got.values() for w in workers)
    assert cells == [(3.0, 50.0), (6.0, 100.0)]


def test_opt_leaves_waiting_jobs_waiting() -> None:
    placement = pack("synergy-opt", [make_job("a", gpus=2), make_job("b", gpus=1)], make_nodes(1, gpus=2))
    assert set(layout(placement)) == {"a"} and "b" in placement.unplaced


@pytest.mark.parametrize("packer", ["proportional", "synergy-greedy", "synergy-tune", "synergy-opt"])
def test_out_of_range_request_is_refused(packer: str) -> None:
    job = make_job("a", gpus=2)
    snapshot = make_snapshot([job], nodes=make_nodes(1))
    placement = builtin_packers().build(packer).pack(snapshot, Shares((ShareRequest("a", 4),)))
    assert not placement.allocations and "outside the job's range" in placement.unplaced["a"]
