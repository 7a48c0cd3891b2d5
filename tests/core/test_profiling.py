"""Profiling a job's CPU knee (stretto.core.profiling) and the packer giving the probes it asks for."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.decisions import ShareRequest, Shares
from stretto.core.job_model import REFERENCE_MEMORY_GIB_PER_GPU, JobThroughputModel, job_prior
from stretto.core.profile_loading import load_profile_book
from stretto.core.profiling import advance_profiling, knee_search, needs_profiling
from stretto.core.registries import builtin_packers
from stretto.core.snapshots import JobAllocation, WorkerPlacement


def profile_walk(rate: Callable[[float], float], *, start: float = 3.0, rounds: int = 12
                 ) -> tuple[list[float], JobThroughputModel]:
    """Run the search against a noiseless truth: each round one report at the first probe asked for."""
    model = JobThroughputModel(job_prior(model="my-own-net", batch_size=64))
    cpu, seen = start, []
    for _ in range(rounds):
        seen.append(cpu)
        model = model.observe(gpus=1, batch_size=64, samples_per_second=rate(cpu), cpu_per_gpu=cpu,
                              memory_gib_per_gpu=REFERENCE_MEMORY_GIB_PER_GPU)
        model, probes = advance_profiling(model)
        if not probes:
            return seen, model
        cpu = probes[0]
    raise AssertionError(f"profiling did not end in {rounds} rounds: {seen}")


def test_profiling_finds_the_cpu_knee_of_a_cpu_sensitive_job() -> None:
    # Throughput in proportion to CPUs up to 4 per GPU, flat above: 33.3 at 1, 100 at 3, 133.3 from 4 on.
    seen, model = profile_walk(lambda c: 100.0 * min(c, 4.0) / 3.0)
    # 3 (where it runs) -> 1 (down first: 33 is a drop) -> 6 (up: 133, the best) -> 12 (still 133: the top is
    # found) -> 4, the axis point between the drop at 3 and the knee at 6 (133: the knee), nothing left between.
    assert seen == [3.0, 1.0, 6.0, 12.0, 4.0]
    assert not needs_profiling(model) and model.prior.declared and model.prior.cpu_saturation == 4.0
    grid = model.as_profile().sensitivity
    assert grid is not None
    assert grid.ideal_cpu_per_gpu == 4.0 and grid.ideal_speedup == pytest.approx(4 / 3, rel=0.02)
    # The elasticity is identifiable now that reports vary CPU: every report says exactly 1.
    assert model.coefficients["cpu"] == pytest.approx(1.0, abs=0.02)
    assert grid.ideal_memory_gib_per_gpu == REFERENCE_MEMORY_GIB_PER_GPU  # memory not probed: kept at the share
    assert grid.factor(4.0, 20.83) == pytest.approx(grid.factor(4.0, 62.5) * 20.83 / 62.5, rel=0.01)


def test_profiling_leaves_an_insensitive_job_alone() -> None:
    seen, model = profile_walk(lambda c: 250.0)
    # Flat at half its CPUs, so (concave curves) flat above too: one probe, never more CPUs than it had.
    assert seen == [3.0, 1.0]
    grid = model.as_profile().sensitivity
    assert grid is not None and grid.ideal_cpu_per_gpu == 1.0 and grid.ideal_speedup == pytest.approx(1.0)


def test_without_a_report_the_job_runs_as_it_is_and_a_slow_point_asks_for_the_best_one_next() -> None:
    model = JobThroughputModel(job_prior(model="x", batch_size=64))
    assert knee_search(model).probes == () and not knee_search(model).done
    for cpu, rate in ((3.0, 100.0), (1.0, 33.0)):
        model = model.observe(gpus=1, batch_size=64, samples_per_second=rate, cpu_per_gpu=cpu,
                              memory_gib_per_gpu=62.5)
    # At 1 CPU it runs at a third: probe 6 if there is room for it, else back to 3.
    assert knee_search(model).probes == (6.0, 3.0)


def test_only_a_job_nobody_knows_is_profiled() -> None:
    book = load_profile_book(None)
    assert needs_profiling(JobThroughputModel(job_prior(model="x")))
    assert not needs_profiling(JobThroughputModel(job_prior(book=book, model="resnet18")))  # its family's grid
    assert not needs_profiling(JobThroughputModel(job_prior(model="x", ideal_cpus_per_gpu=4.0)))  # declared
    model, probes = advance_profiling(JobThroughputModel(job_prior(book=book, model="resnet18")))
    assert probes == () and model.prior.curve.sensitivity is not None


# -- the packer gives the probes ---------------------------------------------------------------------------


def pack(probes: tuple[float, ...], *, neighbour_cpus: float, job_cpus: float = 3.0):
    """One 8-GPU node, 24 CPUs (3 per GPU), 400 GiB: `a` runs on GPU 0, `b` on GPUs 1-6 at `neighbour_cpus` each."""
    a = dataclasses.replace(make_job("a"), probe_cpus_per_gpu=probes)
    previous = {
        "a": JobAllocation("a", (WorkerPlacement("n0", (0,), job_cpus, 50.0),)),
        "b": JobAllocation("b", tuple(WorkerPlacement("n0", (g,), neighbour_cpus, 50.0) for g in range(1, 7))),
    }
    snapshot = make_snapshot([make_job("b", gpus=6), a], nodes=make_nodes(1, gpus=8), previous=previous,
                             workers_can_move=False)
    shares = Shares((ShareRequest("b", 6), ShareRequest("a", 1)))
    placement = builtin_packers().build("synergy-tune").pack(snapshot, shares)
    return {al.job_id: al for al in placement.allocations}


def test_the_packer_gives_a_probe_below_the_share() -> None:
    got = pack((1.0,), neighbour_cpus=3.0)
    assert got["a"].cpus == 1.0 and got["a"].memory_gib == 50.0  # memory: the proportional share
    assert got["b"].cpus == 18.0  # the neighbour keeps what it was given


def test_a_probe_above_the_share_comes_only_out_of_slack() -> None:
    # b holds 18 CPUs: 6 free for GPUs 0 and 7, exactly their proportional shares, so no slack: a stays at 3.
    assert pack((6.0,), neighbour_cpus=3.0)["a"].cpus == 3.0
    # b holds 12: 12 free, 6 of them slack beyond GPU 0's and GPU 7's shares: a gets 6 and GPU 7 keeps its 3.
    got = pack((6.0,), neighbour_cpus=2.0)
    assert got["a"].cpus == 6.0 and got["b"].cpus == 12.0


def test_a_probe_that_does_not_fit_falls_back_to_the_next_preference() -> None:
    # a sits at a slow 1 CPU; 6 does not fit, so it goes back to 3 rather than stay pinned at 1.
    assert pack((6.0, 3.0), neighbour_cpus=3.0, job_cpus=1.0)["a"].cpus == 3.0
    # Already at its probe: it keeps its worker (no restart).
    assert pack((1.0,), neighbour_cpus=3.0, job_cpus=1.0)["a"].workers[0].gpu_indices == (0,)
