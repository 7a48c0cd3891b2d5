"""Finish-time fairness for elastic jobs: T_fair on the job's fair share, hand-computed and against Shockwave's ρ."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stretto.core.builders import make_nodes, make_profile
from stretto.core.fair_share import fair_seconds, scaling_curve, seconds_at
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.metrics import fair_times, lifetime_contention, rhos, shockwave_rhos, summarise
from stretto.sim.simulator import JobOutcome, SimulationConfig, SimulationResult, Simulator
from stretto.sim.workloads import WorkloadJob

# Seconds for a job's work on 2, 4, 6 GPUs (3 workers of 2 GPUs at most; sublinear scaling).
CURVE = ((2, 600.0), (4, 400.0), (6, 300.0))


def test_a_share_above_the_maximum_is_the_maximum():
    assert seconds_at(CURVE, 6.0) == 300.0
    assert seconds_at(CURVE, 100.0) == 300.0


def test_a_share_below_the_minimum_time_shares_the_minimum():
    # 1 GPU's worth for a job that needs 2: it runs half the time → 1200 s
    assert seconds_at(CURVE, 1.0) == pytest.approx(1200.0)
    assert seconds_at(CURVE, 0.5) == pytest.approx(2400.0)


def test_a_share_between_worker_counts_mixes_their_speeds():
    # 3 GPUs: half the time on 2 (1/600 of the job per s), half on 4 (1/400): 1/T = 0.5/600 + 0.5/400 → 480 s
    assert seconds_at(CURVE, 3.0) == pytest.approx(480.0)
    assert seconds_at(CURVE, 4.0) == pytest.approx(400.0)
    # 5 GPUs: between 4 and 6 → 1/T = 0.5/400 + 0.5/300
    assert seconds_at(CURVE, 5.0) == pytest.approx(1 / (0.5 / 400 + 0.5 / 300))


def test_fair_seconds_is_the_curve_at_one_nth_of_the_cluster():
    # 12 GPUs, 4 jobs → 3 GPUs each
    assert fair_seconds(CURVE, total_gpus=12, contention=4) == pytest.approx(480.0)
    # contention below one reads as the job alone: the whole cluster, capped at its maximum
    assert fair_seconds(CURVE, total_gpus=12, contention=0.5) == pytest.approx(300.0)


def test_the_scaling_curve_reads_the_profile_at_every_whole_worker_count():
    profile = ModelProfile("m", {(32, 1): 10.0, (32, 2): 16.0, (32, 4): 24.0, (64, 4): 40.0}, default_batch_size=32)
    curve = scaling_curve(profile, {32: 480.0, 64: 400.0}, min_workers=1, max_workers=2, gpus_per_worker=2)
    # batch 64 is measured on 4 GPUs only: on 2 it scales linearly from there (20 samples/s)
    assert curve[0][0] == 2 and curve[1][0] == 4
    assert curve[1][1] == pytest.approx(480 / 24 + 400 / 40)
    assert curve[0][1] == pytest.approx(480 / 16 + 400 / (40 * 2 / 4))


def test_lifetime_contention_by_hand():
    outcomes = tuple(
        JobOutcome(i, "m", 1, a, a, f, 1.0, 0.0) for i, (a, f) in enumerate([(0, 60), (0, 220), (30, 330)])
    )
    # N: [0,30) 2, [30,60) 3, [60,220) 2, [220,330) 1
    assert lifetime_contention(outcomes) == pytest.approx([2.5, 470 / 220, 520 / 300])


def test_an_elastic_job_alone_is_fair_at_its_maximum_and_not_at_its_minimum():
    # one job, 2..6 GPUs, on 8 GPUs: its fair share is 8 GPUs, capped at 6 → T_fair 300 s
    alone = JobOutcome("e", "m", 6, 0.0, 0.0, 300.0, 300.0, 0.0, CURVE)
    result = SimulationResult((alone,), (), 8)
    assert fair_times(result) == pytest.approx([300.0])
    assert rhos(result) == pytest.approx([1.0])
    held_at_minimum = JobOutcome("e", "m", 6, 0.0, 0.0, 600.0, 300.0, 0.0, CURVE)
    assert rhos(SimulationResult((held_at_minimum,), (), 8)) == pytest.approx([2.0])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 5000), st.floats(1, 5000), st.floats(1, 3000)), min_size=1, max_size=40
    ),
    st.integers(1, 16),
)
def test_on_rigid_one_gpu_jobs_the_trace_contention_is_shockwaves_rho(jobs, gpus):
    outcomes = tuple(
        JobOutcome(f"j{i}", "m", 1, a, a, a + jct, iso, 0.0, ((1, iso),)) for i, (a, jct, iso) in enumerate(jobs)
    )
    result = SimulationResult(outcomes, (), gpus)
    assert rhos(result, contention="trace") == pytest.approx(shockwave_rhos(result), rel=1e-9)
    # and the lifetime contention never exceeds the trace's, so Themis' ρ is never the more lenient one
    assert np.all(rhos(result) >= shockwave_rhos(result) * (1 - 1e-9))


def test_a_simulated_rigid_one_gpu_trace_reduces_to_shockwaves_figures():
    book = ProfileBook({"toy": make_profile("toy", samples_per_second=10.0)})
    trace = [
        WorkloadJob(id=f"j{i}", arrival_s=30.0 * i, model="toy", batch_size=32, epochs=1,
                    samples_per_epoch=600 + 300 * (i % 4))
        for i in range(12)
    ]
    sim = Simulator(workload=trace, nodes=make_nodes(1, gpus=4), profiles=book,
                    plugins=build_plugins(RoundConfig(policy=PluginSpec(name="fifo"))),
                    config=SimulationConfig(round_seconds=60))
    result = sim.run()
    assert all(o.scaling == ((1, o.isolated_s),) for o in result.outcomes)
    assert rhos(result, contention="trace") == pytest.approx(shockwave_rhos(result))
    summary = summarise(result)
    assert summary.shockwave_worst_rho == pytest.approx(float(shockwave_rhos(result).max()))
    assert summary.worst_rho >= summary.shockwave_worst_rho


def test_an_elastic_simulated_job_carries_its_scaling_curve():
    book = ProfileBook({"toy": make_profile("toy", samples_per_second=10.0)})
    job = WorkloadJob(id="e", arrival_s=0, model="toy", batch_size=32, epochs=1, samples_per_epoch=2400,
                      workers={"min": 1, "max": 3}, gpus_per_worker=2)
    sim = Simulator(workload=[job], nodes=make_nodes(1, gpus=8), profiles=book,
                    plugins=build_plugins(RoundConfig(policy=PluginSpec(name="elastic"))),
                    config=SimulationConfig(round_seconds=60))
    result = sim.run()
    (outcome,) = result.outcomes
    # 10 samples/s per GPU, linear: 2400 samples on 2, 4, 6 GPUs
    assert [g for g, _ in outcome.scaling] == [2, 4, 6]
    assert [t for _, t in outcome.scaling] == pytest.approx([120.0, 60.0, 40.0])
    # alone on 8 GPUs at its maximum of 6: it finishes in 40 s, its fair time → ρ = 1
    assert outcome.jct_s == pytest.approx(40.0)
    assert rhos(result) == pytest.approx([1.0])
    assert not math.isnan(summarise(result).worst_rho)
