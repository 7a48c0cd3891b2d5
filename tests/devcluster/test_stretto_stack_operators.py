"""The dev cluster's Stretto stack: operators of another replica count are stopped, and the demo's named
round reaches both the live operator's config and the simulation."""

from __future__ import annotations

import argparse

from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.rounds import RoundConfig
from stretto.devcluster import demo
from stretto.devcluster.demo_workload import SMALL_WORKLOAD, Compression, load, nodes, simulate
from stretto.devcluster.stretto_stack import StackSettings, operator_names, stray_operators


def test_the_operators_of_another_replica_count_are_strays():
    components = ["etcd", "kube-apiserver", "extender", "operator", "emulator"]
    assert stray_operators(components, 2) == ["operator"]
    assert stray_operators([*components, *operator_names(2)], 1) == ["operator-0", "operator-1"]
    assert stray_operators(["operator", "extender"], 1) == []
    assert stray_operators(["operator-0", "operator-1", "operator-2"], 2) == ["operator-2"]


def test_the_demo_runs_the_round_it_names_live_and_simulated():
    parser = argparse.ArgumentParser()
    demo.register(parser.add_subparsers())
    default = demo.round_config(parser.parse_args(["demo"]))
    assert default == RoundConfig()  # the operator's one default round
    flagship = demo.round_config(parser.parse_args(["demo", "--policy", "stretto", "--packer", "synergy-tune"]))
    assert (flagship.policy.name, flagship.packer.name, flagship.predictor.name) == (
        "stretto", "synergy-tune", RoundConfig().predictor.name)
    settings = StackSettings(Compression(time_scale=30, round_seconds=3), round_config=flagship)
    assert settings.operator_config()["scheduler"] == flagship.model_dump(mode="json")  # what the operator reads
    book = load_builtin_profiles()
    jobs = load(SMALL_WORKLOAD, book)
    runs = {name: simulate(jobs, node_states=nodes(3, 8), book=book, compression=Compression(20, 2), round_config=c)
            for name, c in (("default", default), ("flagship", flagship))}
    finishes = {name: [o.finish_s for o in r.outcomes] for name, r in runs.items()}
    assert finishes["default"] != finishes["flagship"]  # the simulation runs the named round, not the default
