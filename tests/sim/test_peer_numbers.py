"""Known results: the peers' own simulators' numbers on their traces (../shared/data/peers/README.md).

Not timed; these check that the job model and the baselines reproduce the peers within 5 %.
"""

from __future__ import annotations

import pytest

from stretto.core.profile_loading import load_profile_book
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.metrics import summarise
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import read_workload

SHOCKWAVE_TRACE = "traces/120_0.2_5_100_40_25_0,0.5,0.5_0.6,0.3,0.09,0.01_multigpu_dynamic.jobs.jsonl"


def run(workload, nodes, book, policy, packer, config) -> float:
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy), packer=PluginSpec(name=packer)))
    return summarise(Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run())


@pytest.mark.parametrize(
    ("packer", "peer_makespan_h"),
    [("proportional", 15.25), ("synergy-greedy", 12.25), ("synergy-tune", 11.00), ("synergy-opt", 10.58)],
)
def test_synergy_static_fifo_makespan(peers, packer, peer_makespan_h) -> None:
    book = load_profile_book(peers / "synergy" / "model_profiles.json")
    workload = read_workload(peers / "synergy" / "static_100job_6_3_1100.0.csv", book)
    config = SimulationConfig(round_seconds=300, finish_at_round_end=True)
    summary = run(workload, parse_cluster_spec("4x8,cpus=24,memory=500"), book, "fifo", packer, config)
    assert summary.makespan_s / 3600 == pytest.approx(peer_makespan_h, rel=0.05)


@pytest.mark.parametrize(("policy", "peer_makespan_h"), [("gavel", 9.22), ("themis", 8.98)])
def test_shockwave_baselines_makespan(peers, policy, peer_makespan_h) -> None:
    book = load_profile_book(peers / "shockwave")
    workload = read_workload(peers / "shockwave" / SHOCKWAVE_TRACE, book)
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20)
    summary = run(workload, parse_cluster_spec("32x1"), book, policy, "proportional", config)
    assert summary.makespan_s / 3600 == pytest.approx(peer_makespan_h, rel=0.05)
