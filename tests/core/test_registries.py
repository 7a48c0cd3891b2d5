"""Every registry entry builds with its defaults, satisfies its Protocol and is named as registered."""

from __future__ import annotations

import pytest

from stretto.core.plugins import Packer, Policy, Predictor
from stretto.core.registries import PluginSpec, Registry, builtin_packers, builtin_policies, builtin_predictors
from stretto.core.rounds import RoundConfig, build_plugins

REGISTRIES = [(builtin_predictors, Predictor), (builtin_policies, Policy), (builtin_packers, Packer)]


@pytest.mark.parametrize(("make_registry", "protocol"), REGISTRIES, ids=["predictors", "policies", "packers"])
def test_every_entry_builds_with_defaults_and_conforms(make_registry, protocol) -> None:
    registry = make_registry()
    assert registry.names()
    for name in registry.names():
        plugin = registry.build(name)
        assert isinstance(plugin, protocol), name
        assert plugin.name == name


def test_expected_builtins_are_registered() -> None:
    assert set(builtin_policies().names()) >= {
        "fifo", "srtf", "las", "drf", "themis", "gavel", "allox", "shockwave", "stretto"
    }
    assert set(builtin_packers().names()) == {
        "proportional", "synergy-greedy", "synergy-tune", "synergy-opt", "most-free"
    }


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown policy 'nope'; known policys: fifo, srtf"):
        builtin_policies().build("nope")


def test_bad_args_name_the_field() -> None:
    with pytest.raises(ValueError, match=r"invalid args for packer 'synergy-opt': time_limit_s: Input should be"):
        builtin_packers().build(PluginSpec(name="synergy-opt", args={"time_limit_s": -1}))
    with pytest.raises(ValueError, match=r"bogus: Extra inputs are not permitted"):
        builtin_policies().build("fifo", {"bogus": 1})


def test_duplicate_registration_fails() -> None:
    registry: Registry[Policy] = builtin_policies()
    entry = registry.entry("fifo")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("fifo", entry.args_model, entry.factory)


def test_round_config_builds_plugins() -> None:
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name="las", args={"queue_thresholds_gpu_s": [10, 20]})))
    assert plugins.policy.name == "las"
    assert plugins.policy.args.queue_thresholds_gpu_s == (10.0, 20.0)
