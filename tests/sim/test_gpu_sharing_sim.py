"""The simulator runs a job on a shared GPU at its co-located speed, and counts half a GPU for it.

One node with one GPU; x and y run 10 samples/s alone and 7 and 6 samples/s sharing (0.7, 0.6).
Rounds of 100 s, FIFO, proportional with sharing on: a (x, 700 samples) takes the GPU and b (y,
900 samples) joins it. Round 0: a does 700 → finishes at 100; b does 600. Round 1: b alone at
10/s, 300 left → finishes at 130. Attained: a 100 s × 1/2 = 50; b 50 + 30 = 80 GPU-seconds.
"""

from __future__ import annotations

import pytest

from stretto.core.builders import make_nodes, make_profile
from stretto.core.colocation import CoLocationTable
from stretto.core.packers.proportional import ProportionalArgs, ProportionalPacker
from stretto.core.profiles import ProfileBook
from stretto.core.registries import builtin_packers, builtin_policies, builtin_predictors
from stretto.core.rounds import RoundPlugins
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import WorkloadJob

BOOK = ProfileBook({m: make_profile(m, samples_per_second=10.0) for m in ("x", "y")})
TABLE = CoLocationTable({("x", 32, "y", 32): (0.7, 0.6)})
TRACE = [
    WorkloadJob(id="a", arrival_s=0, model="x", batch_size=32, epochs=1, samples_per_epoch=700),
    WorkloadJob(id="b", arrival_s=0, model="y", batch_size=32, epochs=1, samples_per_epoch=900),
]


def simulate(packer, colocation: CoLocationTable | None = None):
    plugins = RoundPlugins(
        predictor=builtin_predictors().build("planned-schedule"), policy=builtin_policies().build("fifo"), packer=packer
    )
    return Simulator(
        workload=TRACE,
        nodes=make_nodes(1, gpus=1),
        profiles=BOOK,
        plugins=plugins,
        config=SimulationConfig(round_seconds=100),
        colocation=colocation,
    ).run()


def test_a_shared_job_runs_at_its_co_located_speed() -> None:
    result = simulate(ProportionalPacker(ProportionalArgs(share_gpus=True), colocation=TABLE))
    outcomes = {o.job_id: o for o in result.outcomes}
    assert outcomes["a"].finish_s == pytest.approx(100.0)
    assert outcomes["b"].finish_s == pytest.approx(130.0)
    assert outcomes["a"].attained_gpu_seconds == pytest.approx(50.0)
    assert outcomes["b"].attained_gpu_seconds == pytest.approx(80.0)
    # a shared GPU counts once: the one GPU is fully used in both rounds
    assert [(r.gpu_utilisation, r.running_jobs, r.shared_jobs) for r in result.rounds] == [(1.0, 2, 2), (1.0, 1, 0)]


def test_without_sharing_the_jobs_take_turns() -> None:
    result = simulate(builtin_packers().build("proportional"))
    assert {o.job_id: o.finish_s for o in result.outcomes} == pytest.approx({"a": 70.0, "b": 190.0})


def test_the_simulators_table_is_the_truth_when_given() -> None:
    # The packer shares by TABLE; the simulator is told the pair really runs at (0.5, 0.5): a does 500 in round 0.
    truth = CoLocationTable({("x", 32, "y", 32): (0.5, 0.5)})
    result = simulate(ProportionalPacker(ProportionalArgs(share_gpus=True), colocation=TABLE), colocation=truth)
    finish = {o.job_id: o.finish_s for o in result.outcomes}
    # Round 1: a (200 left) and b (400 left) share again at 5/s each: a finishes at 140, b (still at 5/s) at 180.
    assert finish == pytest.approx({"a": 140.0, "b": 180.0})
