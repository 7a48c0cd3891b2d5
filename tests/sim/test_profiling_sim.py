"""Profiling in the simulator (`SimulationConfig.profiling`): probes given by the packer, each restart charged."""

from __future__ import annotations

import pytest

from stretto.core.builders import make_profile
from stretto.core.profiles import ProfileBook, ResourceSensitivity
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.core.snapshots import NodeState
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import WorkloadJob

# The truth: 100 samples/s at 3 CPUs per GPU, in proportion to CPUs below 4, 133.3 from 4 on (a tenth below 62.5 GiB).
CPUS = (1.0, 2.0, 3.0, 4.0, 6.0, 12.0, 24.0)
KNEE_AT_4 = ResourceSensitivity(
    cpu_per_gpu=CPUS, memory_gib_per_gpu=(20.83, 62.5),
    relative_throughput=tuple((0.1 * min(c, 4) / 3, min(c, 4) / 3) for c in CPUS),
    ideal_cpu_per_gpu=4.0, ideal_memory_gib_per_gpu=62.5, ideal_speedup=4 / 3,
)
BOOK = ProfileBook({"knee4": make_profile("knee4", samples_per_second=100.0, sensitivity=KNEE_AT_4)})
JOB = WorkloadJob(id="j", arrival_s=0, model="knee4", batch_size=32, epochs=1, samples_per_epoch=10**7)
NODE = (NodeState("n0", 8, 96.0, 500.0),)  # 12 CPUs and 62.5 GiB per GPU: every probe below the share fits
CONFIG = SimulationConfig(round_seconds=100, resize_overhead_s=20, workers_can_move=False, job_model="learned-unknown",
                          report_noise=0.0, report_outlier_fraction=0.0, max_rounds=5)


def simulate(**config) -> Simulator:
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name="fifo"), packer=PluginSpec(name="synergy-tune")))
    sim = Simulator(workload=[JOB], nodes=NODE, profiles=BOOK, plugins=plugins, config=CONFIG.model_copy(update=config))
    sim.run()
    return sim


def test_a_profiled_job_runs_at_the_probes_and_pays_a_restart_for_each() -> None:
    sim = simulate(profiling=True)
    assert sim.learned is not None
    # It starts at the node's share, 12 (133.3); 6 is as fast; 3 is a drop (100); 4, between 3 and 6, is as fast:
    # the knee. Then it stays at 4, its profiled ideal, and memory stays at the share throughout.
    assert [(c, m) for _, _, c, m, _ in sim.learned.reports("j")] == [(12.0, 62.5), (6.0, 62.5), (3.0, 62.5),
                                                                       (4.0, 62.5), (4.0, 62.5)]
    grid = sim.learned.model("j").as_profile().sensitivity
    assert grid is not None and grid.ideal_cpu_per_gpu == 4.0
    # By hand: 100 s at 12 (133.3/s), three probes each losing 20 s to the restart (6: 133.3, 3: 100, 4: 133.3),
    # then 100 s at 4 (133.3).
    fast = 100 * 4 / 3
    assert sim.jobs[0].samples_done == pytest.approx(100 * fast + 80 * fast + 80 * 100 + 80 * fast + 100 * fast)


def test_without_profiling_the_job_stays_at_the_share_and_pays_nothing() -> None:
    sim = simulate()
    assert sim.learned is not None
    assert {c for _, _, c, _, _ in sim.learned.reports("j")} == {12.0}
    assert sim.jobs[0].samples_done == pytest.approx(5 * 100 * 100 * 4 / 3)


def test_profiling_needs_a_learned_model() -> None:
    with pytest.raises(ValueError, match="profiling needs a learned job model"):
        simulate(job_model="oracle", profiling=True)
