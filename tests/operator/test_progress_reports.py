"""The report model and the plausibility check: what a job claims against what its allocation allows."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stretto.operator.progress_reports import (
    THROUGHPUT_TOLERANCE,
    ProgressReport,
    check_report,
    job_context,
    max_plausible_throughput,
)
from tests.operator.progress_fixtures import MODELS, allocation, context, job_body, report


@pytest.mark.parametrize(("change", "field"), [
    ({"epoch": -1}, "epoch"),
    ({"batch_size": 0}, "batch_size"),
    ({"samples_per_second": float("nan")}, "samples_per_second"),
    ({"samples_done": -5}, "samples_done"),
    ({"job": ""}, "job"),
    ({"worker": -1}, "worker"),
    ({"extra": 1}, "extra"),
], ids=["negative epoch", "zero batch", "nan rate", "negative samples", "empty job", "negative worker", "extra"])
def test_invalid_reports_are_refused_naming_the_field(change, field):
    with pytest.raises(ValidationError) as error:
        report(**change)
    assert field in str(error.value)


def test_samples_done_is_optional():
    assert ProgressReport.model_validate(report().model_dump() | {"samples_done": None}).samples_done is None


def test_the_ceiling_is_the_top_of_the_job_models_interval_on_the_allocation_times_the_tolerance():
    held = allocation(workers=2, cpus=3.0, memory_gib=62.5)
    ctx = context(held=held)
    top = ctx.model.estimate(gpus=2, batch_size=32, cpu_per_gpu=3.0, memory_gib_per_gpu=62.5).high
    assert max_plausible_throughput(ctx, 32) == pytest.approx(top * THROUGHPUT_TOLERANCE)
    assert top > ctx.model.throughput(32, 2, 3.0, 62.5)  # the family's table is somebody else's hardware
    richer = context(held=allocation(workers=2, cpus=12.0, memory_gib=62.5))
    assert max_plausible_throughput(richer, 32) > max_plausible_throughput(ctx, 32)  # CPU-sensitive model


def test_no_allocation_means_no_throughput_and_a_gpu_share_scales_it():
    ctx = context()
    assert max_plausible_throughput(context(held=allocation(workers=0)), 32) == 0.0
    shared = job_body(gpuShare={"memory": "10Gi", "maxUtilization": 50})
    assert max_plausible_throughput(context(shared), 32) == pytest.approx(0.5 * max_plausible_throughput(ctx, 32))


def test_an_honest_report_passes_unchanged():
    verdict = check_report(report(samples_per_second=1500.0, samples_done=60_000.0, epoch=1.2), context())
    assert (verdict.samples_per_second, verdict.samples_done, verdict.epoch, verdict.batch_size) == (
        1500.0, 60_000.0, 1.2, 32)
    assert not verdict.clipped and verdict.reason == ""


def test_a_report_claiming_more_than_the_allocation_allows_is_clipped_and_flagged():
    ctx = context()
    ceiling = max_plausible_throughput(ctx, 32)
    verdict = check_report(report(samples_per_second=50_000.0), ctx)
    assert verdict.samples_per_second == pytest.approx(ceiling)
    assert verdict.clipped and "clipped" in verdict.reason and "2 GPU(s)" in verdict.reason


def test_samples_never_go_down_and_never_pass_the_work():
    ctx = context()
    back = check_report(report(samples_done=10_000.0, epoch=0.2), ctx, recorded_samples=80_000.0, recorded_epoch=1.6)
    assert (back.samples_done, back.epoch) == (80_000.0, 1.6)
    assert back.clipped and "below the recorded" in back.reason
    beyond = check_report(report(samples_done=9e9, epoch=11.0), ctx)
    assert beyond.samples_done == ctx.total_samples and beyond.epoch == 10.0
    assert "more than the job's work" in beyond.reason


def test_a_batch_size_outside_the_spec_is_ignored():
    verdict = check_report(report(batch_size=1000), context(), recorded_batch_size=64)
    assert verdict.batch_size == 64
    assert "not one of spec.adaptation.batchSizes [32, 64, 128]" in verdict.reason
    assert check_report(report(batch_size=1000), context()).batch_size == 32  # nothing recorded: the initial


def test_samples_done_defaults_to_epochs_times_epoch_size():
    verdict = check_report(report(samples_done=None, epoch=2.5), context())
    assert verdict.samples_done == 2.5 * 50_000


def test_job_context_follows_the_spec_and_reads_the_job_model_as_the_round_does():
    ctx = job_context(job_body(model="no-such-model"), models=MODELS, allocation=None, checkpoint_requested=True)
    assert ctx.model.prior.curve.model == "no-such-model" and ctx.model.observed == 0
    assert (ctx.batch_sizes, ctx.initial_batch_size, ctx.total_samples) == ((32, 64, 128), 32, 500_000.0)
    assert ctx.checkpoint_requested
    view = ctx.allocation_view()
    assert (view.workers, view.gpus, view.gpus_per_worker) == (0, 0, 1)


def test_the_allocation_view_speaks_kubernetes_quantities():
    view = context(held=allocation(workers=3, gpus_per_worker=2, cpus=6.0, memory_gib=48.0)).allocation_view()
    assert view.model_dump(by_alias=True) == {"workers": 3, "gpus": 6, "gpusPerWorker": 2,
                                              "cpuPerWorker": "12", "memoryPerWorker": "96Gi"}
    half = context(held=allocation(workers=1, cpus=2.5, memory_gib=0.5)).allocation_view()
    assert (half.cpu_per_worker, half.memory_per_worker) == ("2500m", "512Mi")

