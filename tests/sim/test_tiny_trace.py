"""A three-job trace whose makespan and JCTs are computed by hand.

Cluster: one node, 2 GPUs. Model: 10 samples/s per GPU. Rounds of 100 s, FIFO, proportional.
  a: t=0, 1 GPU, 600 samples (60 s)    b: t=0, 2 GPUs, 2400 samples (120 s on 2)
  c: t=30, 1 GPU, 300 samples (30 s)
Round 0: a runs (b needs 2, 1 free), a finishes at 60. Round 1 (100): b runs, 2000 samples.
Round 2 (200): b finishes at 220; c waits (no GPU free). Round 3 (300): c finishes at 330.
"""

from __future__ import annotations

import pytest

from stretto.core.builders import make_nodes, make_profile
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.metrics import summarise
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import WorkloadJob

BOOK = ProfileBook({"toy": make_profile("toy", samples_per_second=10.0)})
TRACE = [
    WorkloadJob(id="a", arrival_s=0, model="toy", batch_size=32, epochs=1, samples_per_epoch=600),
    WorkloadJob(
        id="b", arrival_s=0, model="toy", batch_size=32, epochs=1, samples_per_epoch=2400, workers={"min": 2, "max": 2}
    ),
    WorkloadJob(id="c", arrival_s=30, model="toy", batch_size=32, epochs=1, samples_per_epoch=300),
]


def simulate(trace=TRACE, book=BOOK, **config):
    sim = Simulator(
        workload=trace,
        nodes=make_nodes(1, gpus=2),
        profiles=book,
        plugins=build_plugins(RoundConfig(policy=PluginSpec(name="fifo"))),
        config=SimulationConfig(round_seconds=100, **config),
    )
    return sim.run()


@pytest.mark.parametrize(
    ("config", "want_finish"),
    [
        ({}, {"a": 60, "b": 220, "c": 330}),
        # 20 s restore whenever a job did not run the round before: a 80; b 100+20+80 s → 1600, then 40 s → 240;
        # c 300+20+30.
        ({"restore_overhead_s": 20}, {"a": 80, "b": 240, "c": 350}),
        ({"finish_at_round_end": True}, {"a": 100, "b": 300, "c": 400}),
    ],
    ids=["exact", "restore-overhead", "finish-at-round-end"],
)
def test_hand_computed_finish_times(config, want_finish) -> None:
    result = simulate(**config)
    assert {o.job_id: o.finish_s for o in result.outcomes} == pytest.approx(want_finish)


def test_hand_computed_metrics() -> None:
    summary = summarise(simulate())
    assert summary.makespan_s == pytest.approx(330)
    assert summary.avg_jct_s == pytest.approx((60 + 220 + 300) / 3)
    assert summary.median_jct_s == pytest.approx(220)
    # Shockwave's ρ = JCT / (isolated × max(1, 3 jobs / 2 GPUs)): a 60/90, b 220/180, c 300/45 → 2 of 3 above 1.05
    assert summary.shockwave_worst_rho == pytest.approx(300 / 45)
    assert summary.shockwave_unfair_fraction == pytest.approx(2 / 3)
    # Themis' ρ: jobs active on [0,30) 2, [30,60) 3, [60,220) 2, [220,330) 1. Lifetime averages: a 2.5 → share
    # 0.8 GPU, T_fair 60/0.8 = 75; b 470/220 → share 0.936 of its 2 GPUs, T_fair 120·2/0.936 = 256.4; c 520/300
    # → share 1.15 ≥ 1, T_fair 30. ρ: a 0.8, b 0.858, c 10.
    assert summary.worst_rho == pytest.approx(10.0)
    assert summary.unfair_fraction == pytest.approx(1 / 3)
    assert summary.rounds == 4
    # allocated GPUs per round: 1, 2, 2, 1 of 2
    assert summary.gpu_utilisation == pytest.approx((0.5 + 1 + 1 + 0.5) / 4)


def test_batch_size_changes_at_epoch_boundaries() -> None:
    # 2 epochs of 100 samples: epoch 0 at batch 32 (10 samples/s) = 10 s, epoch 1 at 64 (20/s) = 5 s.
    profile = ModelProfile("ada", {(32, 1): 10.0, (64, 1): 20.0}, default_batch_size=32)
    job = WorkloadJob(
        id="x",
        arrival_s=0,
        model="ada",
        batch_size=32,
        epochs=2,
        samples_per_epoch=100,
        adaptation={"mode": "gns", "schedule": [[0, 32], [1, 64]]},
    )
    result = simulate([job], ProfileBook({"ada": profile}))
    assert result.outcomes[0].finish_s == pytest.approx(15.0)
    assert result.outcomes[0].isolated_s == pytest.approx(15.0)


def test_shockwaves_batch_switch_applies_after_the_next_round_and_rounds_up_to_an_epoch() -> None:
    # 4 epochs of 1200 samples; GNS schedule 32 then 128 from epoch 1; 10, 20, 40 samples/s at 32, 64, 128.
    # Round 0: 1000 samples at 32. Round 1: +1000 → 2000 (epoch 1: the switch is now due).
    # Round 2: still 32, +1000 → 3000; then GNS doubles to 64 (not 128) and progress rounds up to 3600.
    # Round 3: 1200 left at 20/s → 60 s: finish at 360. With switches at epoch boundaries: 120 + 90 = 210 s.
    profile = ModelProfile("ada", {(32, 1): 10.0, (64, 1): 20.0, (128, 1): 40.0}, default_batch_size=32)
    job = WorkloadJob(id="x", arrival_s=0, model="ada", batch_size=32, epochs=4, samples_per_epoch=1200,
                      adaptation={"mode": "gns", "schedule": [[0, 32], [1, 128]]})
    book = ProfileBook({"ada": profile})
    assert simulate([job], book, batch_switch="round").outcomes[0].finish_s == pytest.approx(360.0)
    assert simulate([job], book).outcomes[0].finish_s == pytest.approx(210.0)


@pytest.mark.parametrize(("resize_overhead_s", "want"), [(0.0, 260.0), (20.0, 280.0)])
def test_a_resize_can_cost_an_elastic_restart(resize_overhead_s: float, want: float) -> None:
    # Elastic e (1-2 GPUs, 4000 samples) shares the node with a (1 GPU, 600 samples) in round 0: 20 s restore,
    # then 80 s at 10/s = 800. Round 1: a is done, e grows to 2 GPUs (20/s): 2000 more (1600 if the resize
    # costs 20 s), leaving 1200 (1600) for round 2: 60 s (80 s).
    trace = [
        WorkloadJob(id="a", arrival_s=0, model="toy", batch_size=32, epochs=1, samples_per_epoch=600),
        WorkloadJob(id="e", arrival_s=0, model="toy", batch_size=32, epochs=1, samples_per_epoch=4000,
                    workers={"min": 1, "max": 2}),
    ]
    sim = Simulator(workload=trace, nodes=make_nodes(1, gpus=2), profiles=BOOK,
                    plugins=build_plugins(RoundConfig.model_validate({"policy": {"name": "elastic"}})),
                    config=SimulationConfig(round_seconds=100, restore_overhead_s=20,
                                            resize_overhead_s=resize_overhead_s))
    finish = {o.job_id: o.finish_s for o in sim.run().outcomes}
    assert finish == pytest.approx({"a": 80.0, "e": want})


def test_a_run_can_stop_after_some_rounds() -> None:
    result = simulate(max_rounds=2)
    assert len(result.rounds) == 2
    assert [o.job_id for o in result.outcomes] == ["a"]  # b finishes in round 2, c in round 3
