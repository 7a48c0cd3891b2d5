"""Same seed, same output; the `simulate` command's files; generators."""

from __future__ import annotations

import argparse
import json

from stretto.core.profile_loading import load_builtin_profiles
from stretto.sim import command
from stretto.sim.generators import generate_from_spec

RESULT_KEYS = {
    "policy",
    "packer",
    "makespan_s",
    "avg_jct_s",
    "p99_jct_s",
    "worst_rho",
    "unfair_fraction",
    "solver_p99_s",
}


def simulate(
    tmp_path,
    name: str,
    workload: str,
    seed: int = 0,
    policy="fifo,srtf",
    packer="proportional,synergy-tune",
    cluster="2x8,cpus=24,memory=500Gi",
    extra: tuple[str, ...] = (),
) -> int:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(
        [
            "simulate",
            "--workload",
            workload,
            "--cluster",
            cluster,
            "--policy",
            policy,
            "--packer",
            packer,
            "--seed",
            str(seed),
            "--out",
            str(tmp_path / name),
            *extra,
        ]
    )
    return args.func(args)


def test_generators_are_seeded() -> None:
    book = load_builtin_profiles()
    first = generate_from_spec("synergy:jobs=30,jobs_per_hour=6,multigpu=true", profiles=book, seed=3)
    assert first == generate_from_spec("synergy:jobs=30,jobs_per_hour=6,multigpu=true", profiles=book, seed=3)
    assert first != generate_from_spec("synergy:jobs=30,jobs_per_hour=6,multigpu=true", profiles=book, seed=4)
    models = {j.model for j in first}
    assert {"alexnet", "gnmt", "m5"} <= models
    waves = generate_from_spec("shockwave:jobs=40", profiles=book, seed=1)
    assert len(waves) == 40 and {j.adaptation.mode for j in waves} <= {"none", "gns", "accordion"}


def test_simulate_writes_results_and_is_deterministic(tmp_path) -> None:
    spec = "synergy:jobs=25,jobs_per_hour=8"
    assert simulate(tmp_path, "one", spec, seed=5) == 0
    assert simulate(tmp_path, "two", spec, seed=5) == 0
    assert simulate(tmp_path, "three", spec, seed=6) == 0
    one = json.loads((tmp_path / "one" / "results.json").read_text())
    assert len(one) == 4 and all(set(r) >= RESULT_KEYS for r in one)
    strip = [{k: v for k, v in r.items() if not k.startswith("solver")} for r in one]
    again = [
        {k: v for k, v in r.items() if not k.startswith("solver")}
        for r in json.loads((tmp_path / "two" / "results.json").read_text())
    ]
    other = [
        {k: v for k, v in r.items() if not k.startswith("solver")}
        for r in json.loads((tmp_path / "three" / "results.json").read_text())
    ]
    assert strip == again and strip != other
    assert (tmp_path / "one" / "jobs_fifo_proportional.csv").read_text() == (
        tmp_path / "two" / "jobs_fifo_proportional.csv"
    ).read_text()
    for png in ("jct_cdf.png", "rho_cdf.png", "utilisation.png"):
        assert (tmp_path / "one" / png).read_bytes()[:4] == b"\x89PNG"


def test_simulate_reports_bad_input(tmp_path, capsys) -> None:
    assert simulate(tmp_path, "bad", "synergy:jobs=5", cluster="4x") == 2
    assert "expected NxG" in capsys.readouterr().err
    assert simulate(tmp_path, "bad", "synergy:jobs=5", policy="nope") == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
    assert simulate(tmp_path, "bad", "synergy:jobs=0") == 2
    assert "field 'jobs'" in capsys.readouterr().err


def test_plugin_args_reach_the_plugins_and_bad_ones_are_named(tmp_path, capsys) -> None:
    args = ("--packer-args", '{"share_gpus": true}', "--policy-args", "{}")
    assert simulate(tmp_path, "shared", "synergy:jobs=5", policy="fifo", packer="synergy-tune", extra=args) == 0
    bad = ("--packer-args", '{"nope": 1}')
    assert simulate(tmp_path, "bad", "synergy:jobs=5", packer="proportional", extra=bad) == 2
    assert "invalid args for packer 'proportional': nope" in capsys.readouterr().err
    assert simulate(tmp_path, "bad", "synergy:jobs=5", extra=("--policy-args", "{not json")) == 2


def test_simulate_defaults_to_the_operators_predictor_and_labels_an_oracle(tmp_path, capsys) -> None:
    assert simulate(tmp_path, "default", "shockwave:jobs=6", policy="fifo", packer="proportional") == 0
    (row,) = json.loads((tmp_path / "default" / "results.json").read_text())
    assert row["predictor"] == "bayesian-regime" and row["oracle"] is False
    assert "(oracle)" not in capsys.readouterr().out
    oracle = ("--predictor", "planned-schedule")
    assert simulate(tmp_path, "oracle", "shockwave:jobs=6", policy="fifo", packer="proportional", extra=oracle) == 0
    (row,) = json.loads((tmp_path / "oracle" / "results.json").read_text())
    assert row["predictor"] == "planned-schedule" and row["oracle"] is True
    out = capsys.readouterr().out
    assert "predictor planned-schedule (oracle)" in out
