"""The combined workload (Shockwave-style adaptive jobs with Synergy's CPU/memory sensitivity) and
`shockwave`/`stretto` driven through the simulator on a tiny trace of it."""

from __future__ import annotations

import argparse

import pytest

from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.core.snapshots import AdaptationMode
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.combined_workload import SENSITIVITY_OF, CombinedWorkloadArgs, generate_combined, load_combined_book
from stretto.sim.command import _conventions, load_workload
from stretto.sim.simulator import SimulationConfig, Simulator


@pytest.fixture
def book(peers):
    return load_combined_book(peers)


def test_every_model_has_shockwave_throughputs_and_its_synergy_sensitivity(book) -> None:
    assert set(book.profiles) == set(SENSITIVITY_OF)
    res18 = book.get("ResNet-18")
    assert len(res18.batch_sizes) > 1 and res18.samples_per_epoch == 50_000  # Shockwave's table, CIFAR-10
    assert res18.sensitivity.ideal_cpu_per_gpu == 9.0 and res18.sensitivity.ideal_speedup == 2.4  # Synergy's res18
    assert book.get("Recommendation").sensitivity.ideal_memory_gib_per_gpu == 187.5  # m5: memory-hungry
    assert book.get("LM").sensitivity.ideal_speedup == 1.0  # lstm: insensitive


def test_deterministic_per_seed_with_schedules_and_sensitivity(book) -> None:
    args = CombinedWorkloadArgs(jobs=60, mean_interarrival_s=20)
    first, again = generate_combined(args, profiles=book, seed=4), generate_combined(args, profiles=book, seed=4)
    assert first == again
    assert generate_combined(args, profiles=book, seed=5) != first
    modes = {j.adaptation.mode for j in first}
    assert {AdaptationMode.GNS, AdaptationMode.ACCORDION} <= modes
    assert all(j.adaptation.batch_sizes and max(j.adaptation.batch_sizes) > j.batch_size for j in first)
    assert all(book.get(j.model).sensitivity is not None for j in first)
    assert any(book.get(j.model).sensitivity.ideal_speedup > 1 for j in first)


def test_command_line_spec_and_conventions(peers) -> None:
    jobs, book = load_workload("combined:jobs=12,mean_interarrival_s=30", peers, 2)
    assert len(jobs) == 12 and book.get(jobs[0].model).sensitivity is not None
    config = _conventions(
        "combined:jobs=12", argparse.Namespace(round_seconds=None, restore_overhead=None, resize_overhead=None,
                                               finish_at_round_end=None, workers_can_move=True, batch_switch=None)
    )
    assert (config.round_seconds, config.restore_overhead_s, config.resize_overhead_s) == (120.0, 20.0, 0.0)


def _simulate(workload, book, policy: str, packer: str):
    plugins = build_plugins(
        RoundConfig(
            predictor=PluginSpec(name="bayesian-regime"), policy=PluginSpec(name=policy), packer=PluginSpec(name=packer)
        )
    )
    nodes = parse_cluster_spec("2x4,cpus=12,memory=250Gi")
    config = SimulationConfig(round_seconds=120, restore_overhead_s=20)
    return Simulator(workload=workload, nodes=nodes, profiles=book, plugins=plugins, config=config).run()


@pytest.mark.parametrize("policy", ["shockwave", "stretto"])
@pytest.mark.parametrize("packer", ["proportional", "synergy-tune"])
def test_tiny_combined_trace_is_feasible_and_deterministic(book, policy: str, packer: str) -> None:
    args = CombinedWorkloadArgs(jobs=10, mean_interarrival_s=60, max_hours=0.5, gpu_mix=(0.7, 0.3, 0.0, 0.0))
    workload = generate_combined(args, profiles=book, seed=3)
    result = _simulate(workload, book, policy, packer)
    assert all(o.finish_s > o.arrival_s and o.first_start_s >= o.arrival_s for o in result.outcomes)
    assert all(r.gpu_utilisation <= 1 + 1e-9 and r.cpu_utilisation <= 1 + 1e-9 for r in result.rounds)
    assert all(r.memory_utilisation <= 1 + 1e-9 for r in result.rounds)
    again = _simulate(workload, book, policy, packer)
    assert again.outcomes == result.outcomes  # rounds differ only in measured solver seconds
    assert [(r.time_s, r.running_jobs, r.cpu_utilisation) for r in again.rounds] == [
        (r.time_s, r.running_jobs, r.cpu_utilisation) for r in result.rounds
    ]
