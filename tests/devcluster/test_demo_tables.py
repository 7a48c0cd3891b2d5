"""The demo's live view and its comparison table render in 80 columns, folded, never cut with '…'."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from stretto.core.profile_loading import load_builtin_profiles
from stretto.devcluster.demo import comparison_tables, live_view
from stretto.devcluster.demo_workload import DEMO_WORKLOAD, Compression, load
from stretto.devcluster.live_run import LiveRun
from stretto.sim.metrics import Summary


def rendered(renderable) -> str:
    console = Console(width=80, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_live_view_fits_80_columns_with_a_row_for_every_job():
    jobs = load(DEMO_WORKLOAD, load_builtin_profiles())
    run = LiveRun(None, "demo", jobs, Compression(time_scale=30, round_seconds=3),  # type: ignore[arg-type]
                  total_gpus=32, total_cpus=384, total_memory_gib=3072, clock=lambda: 10.0)
    run.started = 0.0
    for record in list(run.records.values())[:3]:
        record.applied = 0.0
        record.status = {"phase": "Succeeded", "readyWorkers": 0, "allocation": {"gpus": 0}}
    text = rendered(live_view(run))
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    assert all(job.id[:6] in text for job in jobs)    # every job has its row; long ids fold onto a second line


def test_the_comparison_names_the_predictor_and_fits_80_columns():
    summary = Summary(**{f.name: 1.0 for f in dataclasses.fields(Summary)})
    text = rendered(comparison_tables([("live", "operator + emulator", summary)], summary, summary))
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    assert "live / sim" in text
