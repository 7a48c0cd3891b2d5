"""The demo's live view and the comparison tables fit 80 columns by design: names break after a hyphen,
headers are set on two lines, and no word or figure is cut ('…') or folded mid-word."""

from __future__ import annotations

import dataclasses
import re

from rich.console import Console

from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig
from stretto.devcluster.demo import comparison_tables, live_view, wrap_at_hyphens
from stretto.devcluster.demo_workload import DEMO_WORKLOAD, Compression, load
from stretto.devcluster.live_run import LiveRun
from stretto.sim.command import summary_tables
from stretto.sim.metrics import Summary


def rendered(renderable) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def words(text: str) -> set[str]:
    return set(re.findall(r"[\w.%ρ()/+-]+", text))


def assert_fits(text: str) -> None:
    assert "…" not in text, text
    assert max(map(len, text.splitlines())) <= 80, text


def test_long_names_break_after_a_hyphen():
    assert wrap_at_hyphens("j11-mobilenetv2-accordion", 16) == "j11-mobilenetv2-\naccordion"
    assert wrap_at_hyphens("j11-mobilenetv2-accordion", 12) == "j11-\nmobilenetv2-\naccordion"
    assert wrap_at_hyphens("j03-lstmlm-gns", 16) == "j03-lstmlm-gns"
    assert wrap_at_hyphens("averyveryverylongname", 8) == "averyveryverylongname"


def test_the_live_view_fits_80_columns_with_every_job_and_phase_whole():
    jobs = load(DEMO_WORKLOAD, load_builtin_profiles())
    run = LiveRun(None, "demo", jobs, Compression(time_scale=30, round_seconds=3),  # type: ignore[arg-type]
                  total_gpus=32, total_cpus=384, total_memory_gib=3072, clock=lambda: 10.0)
    run.started = 0.0
    phases = ["Succeeded", "Running", "Pending"]
    for i, record in enumerate(list(run.records.values())[:15]):
        record.applied = 0.0
        record.status = {"phase": phases[i % 3], "readyWorkers": 10, "prediction": {"rho": 1.23},
                         "allocation": {"gpus": 16, "plannedWorkers": 10}}
    text = rendered(live_view(run))
    assert_fits(text)
    seen = words(text)
    assert set(phases) <= seen and "arrives" in seen
    for job in jobs:  # every part of every name, whole
        assert all(part in text for part in job.id.replace("-", "- ").split()), job.id
    assert "10/10" in seen and "100%" not in text.replace(" 0%", "")  # figures are never split


def test_the_comparison_names_the_predictor_and_fits_80_columns():
    summary = Summary(**{f.name: 1234.5 for f in dataclasses.fields(Summary)})
    rows = [("live", "operator + emulator", summary), ("simulated", "restore 46 s,\nresize 25 s", summary)]
    flagship = RoundConfig(policy=PluginSpec(name="stretto"), packer=PluginSpec(name="synergy-tune"))
    text = rendered(comparison_tables(rows, summary, summary, flagship))
    assert_fits(text)
    assert {"makespan", "median", "(Shockwave", "operator", "emulator", "restore", "resize"} <= words(text)
    assert "live / sim" in text
    assert {"stretto", "synergy-tune", "bayesian-regime"} <= words(text)  # the round that was run, named


def test_the_simulate_tables_fit_80_columns_for_the_longest_names():
    summary = Summary(**{f.name: 123456.0 for f in dataclasses.fields(Summary)})
    rows = [("stretto", "synergy-tune", summary), ("shockwave", "proportional", summary)]
    text = rendered(summary_tables(rows, "bayesian-regime (oracle)", oracle=True))
    assert_fits(text)
    assert {"stretto", "synergy-tune", "shockwave", "proportional", "(oracle)", "34.29"} <= words(text)


def test_what_follows_the_live_view_starts_on_its_own_line_off_a_terminal(monkeypatch):
    import io

    from stretto.devcluster import demo

    out = io.StringIO()
    monkeypatch.setattr(demo, "console", Console(file=out, width=80, force_terminal=False))
    jobs = load(DEMO_WORKLOAD, load_builtin_profiles())[:2]
    run = LiveRun(None, "demo", jobs, Compression(time_scale=30, round_seconds=3),  # type: ignore[arg-type]
                  total_gpus=32, total_cpus=384, total_memory_gib=3072, clock=lambda: 10.0)
    run.started = 0.0
    for record in run.records.values():  # both done: play draws one frame and returns
        record.applied = record.finished = 0.0
        record.status = {"phase": "Succeeded"}
    demo.play(run, timeout=5)
    demo.console.print("live run and simulation")
    assert "\nlive run and simulation\n" in out.getvalue(), out.getvalue()[-200:]
