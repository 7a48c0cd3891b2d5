"""The training emulator: progress for the allocation a job really got, batch sizes per its adaptation mode."""

from __future__ import annotations

import argparse
import base64
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.core.epoch_schedules import batch_size_at
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.snapshots import AdaptationMode
from stretto.devcluster.rest import ApiError
from stretto.devcluster.training_emulator import (
    JobTruth,
    ReportNoise,
    TrainingEmulator,
    WorkerAllocation,
    advance,
    allocation_from_pods,
    is_loopback_url,
    job_profile,
    load_truths,
    register,
    training_run,
    true_profile,
    truth_for,
)
from stretto.sdk.reporter import ProgressState
from stretto.sim.batch_schedules import schedule_for
from tests.operator.progress_fixtures import Operator, job_body, serving, token

BOOK = load_builtin_profiles()
RESNET18 = BOOK.get("resnet18")
EPOCH = 50_000


def pod(index: int, *, phase: str = "Running", gpus: int = 2, cpu: str | None = "12", memory: str | None = "96Gi",
        share: int | None = None, url: str = "http://127.0.0.1:1") -> dict[str, Any]:
    limits = {contracts.GPU_SHARE_RESOURCE: "1"} if share else {contracts.GPU_RESOURCE: str(gpus)}
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    annotations = {contracts.ANNOTATION_GPU_MAX_UTIL: str(share)} if share else {}
    return {
        "metadata": {"name": f"job-worker-{index}", "namespace": "ns", "annotations": annotations,
                     "labels": {contracts.LABEL_JOB: "job", contracts.LABEL_ROLE: contracts.ROLE_WORKER},
                     "ownerReferences": [{"uid": "uid-job"}]},
        "spec": {"containers": [{"name": "trainer", "resources": {"limits": limits, "requests": requests},
                                 "env": [{"name": "STRETTO_PROGRESS_URL", "value": url}]}]},
        "status": {"phase": phase},
    }


def test_the_allocation_is_read_from_running_pods():
    held = allocation_from_pods([pod(0), pod(1, cpu="8", memory="128Gi")])
    assert held == WorkerAllocation(workers=2, gpus_per_worker=2, cpu_per_worker=8.0, memory_gib_per_worker=96.0)
    assert held.gpus == 4
    assert allocation_from_pods([pod(0, cpu=None, memory=None)]).cpu_per_worker is None
    assert allocation_from_pods([pod(0, share=40)]) == WorkerAllocation(1, 1, 12.0, 96.0, gpu_fraction=0.4)


@pytest.mark.parametrize("pods", [
    [], [pod(0), pod(1, phase="Pending")], [pod(0, gpus=0)],
], ids=["none", "one pending", "no GPU"])
def test_a_job_not_fully_running_does_not_train(pods):
    assert allocation_from_pods(pods) is None


def test_fewer_workers_than_the_minimum_do_not_train():
    assert allocation_from_pods([pod(0)], min_workers=2) is None


def test_progress_follows_the_job_model_for_the_allocation():
    job = TrainingJob.model_validate(job_body(mode="none", batch_sizes=(32,)))
    run = training_run(job, default_batch_size=256)
    held = WorkerAllocation(workers=2, gpus_per_worker=2, cpu_per_worker=12.0, memory_gib_per_worker=96.0)
    rate = RESNET18.throughput(32, 4, 6.0, 48.0)
    after = advance(run, profile=RESNET18, allocation=held, seconds=10.0)
    assert after.samples_done == pytest.approx(10.0 * rate)
    assert after.samples_per_second == pytest.approx(rate)
    slower = advance(run, profile=RESNET18, allocation=WorkerAllocation(1, 2, 2.0, 96.0), seconds=10.0)
    assert slower.samples_done < after.samples_done  # fewer GPUs and CPUs: less done in the same time
    assert advance(run, profile=RESNET18, allocation=held, seconds=0.0).samples_per_second == pytest.approx(rate)


def test_gns_doubles_the_batch_at_epoch_boundaries_as_the_simulator_does():
    job = TrainingJob.model_validate(job_body(mode="gns", batch_sizes=(32, 64, 128), epochs=20))
    run = training_run(job, default_batch_size=256)
    assert run.schedule == schedule_for(AdaptationMode.GNS, epochs=20, initial=32, batch_sizes=[32, 64, 128])
    held = WorkerAllocation(workers=1, gpus_per_worker=1)
    per_epoch = EPOCH / RESNET18.throughput(32, 1)
    seen = []
    for _ in range(20):
        run = advance(run, profile=RESNET18, allocation=held, seconds=per_epoch)
        seen.append((round(run.epoch), run.batch_size))
    assert seen == [(e, batch_size_at(run.schedule, min(e, 19), 32)) for e in range(1, 21)]
    assert {b for _, b in seen} == {32, 64, 128}
    assert run.done and run.samples_done == run.total_samples


def test_accordion_alternates_small_and_large():
    job = TrainingJob.model_validate(job_body(mode="accordion", batch_sizes=(10, 80), epochs=40))
    run = training_run(job, default_batch_size=256)
    assert run.schedule == schedule_for(AdaptationMode.ACCORDION, epochs=40, initial=10, batch_sizes=[10, 80])
    sizes = [training_run(job, default_batch_size=256, samples_done=e * EPOCH).batch_size for e in range(40)]
    assert sizes[0] == 10 and sizes[10] == 80 and sizes[20] == 10 and sizes[22] == 80


def test_doubling_past_the_declared_sizes_snaps_to_one_of_them():
    job = TrainingJob.model_validate(job_body(mode="gns", batch_sizes=(32, 100), epochs=20))
    assert {b for _, b in training_run(job, default_batch_size=256).schedule} <= {32, 100}


def test_a_long_step_finishes_the_work_and_no_more():
    job = TrainingJob.model_validate(job_body(epochs=2))
    run = advance(training_run(job, default_batch_size=256, samples_done=EPOCH), profile=RESNET18,
                  allocation=WorkerAllocation(1, 1), seconds=1e9)
    assert run.done and run.samples_done == 2 * EPOCH and run.epoch == 2.0


def test_an_unknown_model_plays_the_operators_default():
    assert job_profile(TrainingJob.model_validate(job_body(model="lm")), BOOK).model == "resnet50"


@pytest.mark.parametrize(("url", "loopback"), [
    ("http://127.0.0.1:8081", True), ("http://localhost:1", True), ("http://[::1]:8081", True),
    ("http://10.0.0.1:8081", False), ("http://stretto-operator.stretto-system:8081", False),
])
def test_reports_go_to_loopback_only(url, loopback):
    assert is_loopback_url(url) is loopback


class CannedApi:
    """Answers the emulator's three GETs from fixed objects (a unit test: no API server here)."""

    def __init__(self, job: dict[str, Any], pods: list[dict[str, Any]], secret_token: str | None) -> None:
        self.job, self.pods, self.secret_token = job, pods, secret_token

    def get(self, path: str) -> Any:
        if path.endswith("/trainingjobs"):
            return {"items": [self.job]}
        if "/pods" in path:
            return {"items": self.pods}
        if self.secret_token is None:
            raise ApiError(404, "not found", "GET", path)
        return {"data": {"token": base64.b64encode(self.secret_token.encode()).decode()}}


def test_ticks_report_through_the_sdk_until_the_work_is_done():
    body = job_body(mode="none", batch_sizes=(32,), epochs=2)
    operator = Operator(body)
    clock = [0.0]
    with serving(operator.app()) as url:
        api = CannedApi(body, [pod(0, gpus=1, cpu="3", memory="64000Mi", url=url)], secret_token=None)
        emulator = TrainingEmulator(api, book=BOOK, time_scale=60.0, clock=lambda: clock[0])
        assert emulator.tick() == 0  # no Secret yet: waits
        api.secret_token = token(body)
        assert emulator.tick() == 1  # first sight: reports the rate, no time has passed
        assert operator.ledger.get("ns", "job").samples_done == 0.0
        clock[0] = 1.0
        assert emulator.tick() == 1
        record = operator.ledger.get("ns", "job")
        assert record.samples_done == pytest.approx(60.0 * RESNET18.throughput(32, 1, 3.0, 62.5))
        assert record.flagged_reports == 0 and record.batch_size == 32
        clock[0] = 1000.0
        assert emulator.tick() == 1  # finishes
        assert operator.ledger.get("ns", "job").samples_done == 2 * EPOCH
        clock[0] = 1001.0
        assert emulator.tick() == 0  # done: no more reports
    assert operator.ledger.get("ns", "job").reports == 3


def test_a_paused_job_does_not_train_while_its_workers_are_not_running():
    body = job_body(mode="none", batch_sizes=(32,))
    operator = Operator(body)
    clock = [0.0]
    with serving(operator.app()) as url:
        api = CannedApi(body, [pod(0, gpus=1, url=url)], secret_token=token(body))
        emulator = TrainingEmulator(api, book=BOOK, time_scale=1.0, clock=lambda: clock[0])
        emulator.tick()
        api.pods = [pod(0, gpus=1, url=url), pod(1, gpus=1, phase="Pending", url=url)]  # scaling up
        clock[0] = 100.0
        assert emulator.tick() == 0
        api.pods = [pod(0, gpus=1, url=url), pod(1, gpus=1, url=url)]
        clock[0] = 200.0
        emulator.tick()  # running again: the clock restarts here
        assert operator.ledger.get("ns", "job").samples_done == 0.0


def test_a_checkpoint_request_saves_and_holds_until_the_resize():
    body = job_body(mode="none", batch_sizes=(32,), epochs=100)
    operator = Operator(body)
    clock = [0.0]
    with serving(operator.app()) as url:
        two = [pod(i, gpus=1, cpu="3", memory="64000Mi", url=url) for i in range(2)]
        api = CannedApi(body, two, secret_token=token(body))
        emulator = TrainingEmulator(api, book=BOOK, time_scale=1.0, clock=lambda: clock[0])
        emulator.tick()
        clock[0] = 10.0
        operator.checkpoint_requested = True  # worker 1 is about to be removed
        emulator.tick()  # trains to t=10, then sees the request in the reply: saves and holds
        saved = operator.ledger.get("ns", "job").samples_done
        assert saved > 0
        clock[0] = 20.0
        emulator.tick()  # holding: the notice period trains nothing
        assert operator.ledger.get("ns", "job").samples_done == saved
        api.pods, operator.checkpoint_requested = two[:1], False  # resized to one worker
        clock[0] = 30.0
        emulator.tick()  # resumes from the checkpoint; the clock restarts here
        clock[0] = 40.0
        emulator.tick()
        one_worker = RESNET18.throughput(32, 1, 3.0, 62.5)
        assert operator.ledger.get("ns", "job").samples_done == pytest.approx(saved + 10.0 * one_worker)


def test_a_withdrawn_checkpoint_request_lets_training_go_on():
    body = job_body(mode="none", batch_sizes=(32,), epochs=100)
    operator = Operator(body, checkpoint_requested=True)
    clock = [0.0]
    with serving(operator.app()) as url:
        api = CannedApi(body, [pod(0, gpus=1, url=url)], secret_token=token(body))
        emulator = TrainingEmulator(api, book=BOOK, time_scale=1.0, clock=lambda: clock[0])
        emulator.tick()  # asked at once: holds
        clock[0] = 10.0
        operator.checkpoint_requested = False
        emulator.tick()  # still held for this interval; the reply withdraws the request
        assert operator.ledger.get("ns", "job").samples_done == 0.0
        clock[0] = 20.0
        emulator.tick()
        assert operator.ledger.get("ns", "job").samples_done > 0.0


def test_a_remote_progress_url_is_refused():
    with pytest.raises(ValueError, match="loopback"):
        TrainingEmulator(CannedApi(job_body(), [], None), book=BOOK, progress_url="http://10.1.2.3:8081")


# -- the hidden truth ------------------------------------------------------------------------------

RESNET50 = BOOK.get("resnet50")
HIDDEN = {"family": "resnet50", "throughputScale": 1.5, "noise": 0.05, "outlierFraction": 0.2,
          "outlierFactor": [0.3, 3.0]}


def test_a_truth_file_is_read_from_yaml_or_json(tmp_path: Path):
    yaml_file = tmp_path / "truth.yaml"
    yaml_file.write_text("llama-finetune:\n  family: resnet50\n  throughputScale: 1.5\n  noise: 0.05\n"
                         "  outlierFraction: 0.2\n  outlierFactor: [0.3, 3]\nns/other: {}\n")
    truths = load_truths(yaml_file, BOOK)
    assert truths["llama-finetune"] == JobTruth(family="resnet50", throughput_scale=1.5, noise=0.05,
                                                outlier_fraction=0.2, outlier_factor=(0.3, 3.0))
    assert truths["ns/other"] == JobTruth()  # all defaults: the operator's belief, noise-free
    json_file = tmp_path / "truth.json"
    json_file.write_text(json.dumps({"job": {"family": "gnmt"}, "ns/job": {"family": "m5"}}))
    truths = load_truths(json_file, BOOK)
    assert truth_for(truths, "ns", "job").family == "m5"  # namespace/name before the bare name
    assert truth_for(truths, "elsewhere", "job").family == "gnmt"
    assert truth_for(truths, "ns", "unknown") is None
    assert load_truths(_written(tmp_path, ""), BOOK) == {}


def _written(tmp_path: Path, text: str, name: str = "truth.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "named"), [
    ("job: {family: bert}", r"job\.family: no profile 'bert'"),
    ("job: {family: ''}", r"job\.family: String should have at least 1 character"),
    ("job: {throughputScale: 0}", r"job\.throughputScale: Input should be greater than 0"),
    ("job: {throughputScale: .nan}", r"job\.throughputScale: Input should be a finite number"),
    ("job: {noise: -0.1}", r"job\.noise: Input should be greater than or equal to 0"),
    ("job: {outlierFraction: 1.5}", r"job\.outlierFraction: Input should be less than or equal to 1"),
    ("job: {outlierFactor: [3, 0.3]}", r"job\.outlierFactor: .*low <= high"),
    ("job: {outlierFactor: [0, 3]}", r"job\.outlierFactor\.0: Input should be greater than 0"),
    ("job: {outlierFactor: [0.3]}", r"job\.outlierFactor\.1: Field required"),
    ("job: {famliy: resnet50}", r"job\.famliy: Extra inputs are not permitted"),
    ("job: 3", r"job: Input should be a valid dictionary"),
    ("[job]", r"\(top level\): Input should be a valid dictionary"),
    ("a/b/c: {}", r"'a/b/c' is not a job name or namespace/name"),
    ("job: {family: [", r"cannot read it"),
])
def test_a_bad_truth_file_is_refused_naming_the_field(tmp_path: Path, text: str, named: str):
    path = _written(tmp_path, text)
    with pytest.raises(ValueError, match=named) as refused:
        load_truths(path, BOOK)
    assert str(path) in str(refused.value)


def test_the_command_refuses_a_bad_truth_file_before_looking_for_a_cluster(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture):
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["emulate-training", "--run-dir", str(tmp_path / "no-cluster"),
                              "--truth", str(_written(tmp_path, "job: {noise: 2}"))])
    assert args.func(args) == 2
    assert "job.noise: Input should be less than or equal to 1" in caplog.text


def test_a_missing_truth_file_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot read it"):
        load_truths(tmp_path / "absent.yaml", BOOK)


def test_the_truth_plays_its_family_scaled_and_keeps_the_resource_sensitivity():
    job = TrainingJob.model_validate(job_body(model="llama-finetune", mode="none", batch_sizes=(128,)))
    truth = JobTruth.model_validate(HIDDEN)
    played = true_profile(job, truth, BOOK)
    for gpus, cpu, memory in ((1, 3.0, 62.5), (2, 1.0, 62.5), (4, 9.0, 200.0)):
        assert played.throughput(128, gpus, cpu, memory) == pytest.approx(
            1.5 * RESNET50.throughput(128, gpus, cpu, memory))
    assert played.throughput(128, 1, 1.0, 62.5) < played.throughput(128, 1, 3.0, 62.5)  # CPU still matters
    assert true_profile(job, None, BOOK) is job_profile(job, BOOK)
    assert true_profile(job, JobTruth(), BOOK) is job_profile(job, BOOK)  # no family, scale 1: the belief


def test_report_noise_has_the_configured_sd_and_outlier_fraction():
    """20,000 draws. Outliers: a binomial share of 0.2 has sd sqrt(0.2 * 0.8 / 20000) = 0.0028, so +-0.015
    is over 5 sd. The ~16,000 other factors are log-normal with mean 1 and sd 0.05: the sample mean's sd is
    0.05 / sqrt(16000) = 0.0004 (bound 0.003) and the sample sd's about 0.05 / sqrt(2 * 16000) = 0.0003
    (bound 0.002). Outlier factors are log-uniform in [0.3, 3]: half of them below 1 (sd 0.008, bound 0.04)."""
    noise = ReportNoise(JobTruth.model_validate(HIDDEN), seed=0, job="llama")
    draws = [noise.draw() for _ in range(20_000)]
    outliers = [d.factor for d in draws if d.outlier]
    normal = [d.factor for d in draws if not d.outlier]
    assert len(outliers) / len(draws) == pytest.approx(0.2, abs=0.015)
    assert all(0.3 <= f <= 3.0 for f in outliers)
    assert sum(f < 1.0 for f in outliers) / len(outliers) == pytest.approx(0.5, abs=0.04)
    assert statistics.fmean(normal) == pytest.approx(1.0, abs=0.003)
    assert statistics.stdev(normal) == pytest.approx(0.05, abs=0.002)


def test_a_noise_free_truth_draws_exactly_one():
    noise = ReportNoise(JobTruth(family="resnet50", throughput_scale=2.0), seed=3, job="job")
    assert {noise.draw().factor for _ in range(100)} == {1.0}


class RecordingReporter:
    """Stands in for the SDK's Reporter: keeps every report, answers as an operator that wants nothing."""

    def __init__(self, **_: Any) -> None:
        self.reports: list[dict[str, Any]] = []

    def report(self, **report: Any) -> ProgressState:
        self.reports.append(report)
        return ProgressState(sent=True)


def reports_of(body: dict[str, Any], truths: dict[str, JobTruth] | None, ticks: int, *, seed: int = 0,
               time_scale: float = 1.0) -> list[dict[str, Any]]:
    """What the emulator reports for `body` (one worker: 1 GPU, 3 CPUs, 62.5 GiB) over `ticks` one-second ticks."""
    reporters: list[RecordingReporter] = []

    def factory(**kwargs: Any) -> RecordingReporter:
        reporters.append(RecordingReporter(**kwargs))
        return reporters[-1]

    clock = [0.0]
    api = CannedApi(body, [pod(0, gpus=1, cpu="3", memory="64000Mi")], secret_token="t")
    emulator = TrainingEmulator(api, book=BOOK, time_scale=time_scale, clock=lambda: clock[0],
                                reporter_factory=factory, truths=truths, seed=seed)
    for tick in range(ticks):
        clock[0] = float(tick)
        assert emulator.tick() == 1
    return reporters[0].reports


def play(truth: dict[str, Any], ticks: int, *, seed: int = 0, name: str = "job",
         namespace: str = "ns") -> tuple[list[dict[str, Any]], float]:
    """A job the operator knows nothing of ("llama-finetune") played with `truth`: its reports and true rate."""
    body = job_body(name, namespace=namespace, uid="uid-job", model="llama-finetune", mode="none",
                    batch_sizes=(128,), epochs=1000)
    truths = {name: JobTruth.model_validate(truth)}
    profile = true_profile(TrainingJob.model_validate(body), truths[name], BOOK)
    return reports_of(body, truths, ticks, seed=seed), profile.throughput(128, 1, 3.0, 62.5)


def test_the_reported_rate_carries_the_configured_noise():
    """2,000 reports with 5 % noise and no outliers: the sample sd of reported / true has sd about
    0.05 / sqrt(4000) = 0.0008 (bound 0.004), the mean 0.05 / sqrt(2000) = 0.0011 (bound 0.005)."""
    reports, rate = play({**HIDDEN, "outlierFraction": 0.0}, 2000)
    assert rate == pytest.approx(1.5 * RESNET50.throughput(128, 1, 3.0, 62.5))
    ratios = [r["samples_per_second"] / rate for r in reports]
    assert statistics.stdev(ratios) == pytest.approx(0.05, abs=0.004)
    assert statistics.fmean(ratios) == pytest.approx(1.0, abs=0.005)


def test_the_reported_rate_carries_the_configured_outliers():
    """2,000 reports, no noise but 20 % outliers: every other report is the true rate exactly, so the share
    of reports off it is the outlier share (binomial sd sqrt(0.2 * 0.8 / 2000) = 0.009, bound 0.04)."""
    reports, rate = play({**HIDDEN, "noise": 0.0}, 2000)
    ratios = [r["samples_per_second"] / rate for r in reports]
    off = [x for x in ratios if not math.isclose(x, 1.0, rel_tol=1e-12)]
    assert len(off) / len(ratios) == pytest.approx(0.2, abs=0.04)
    assert all(0.3 - 1e-9 <= x <= 3.0 + 1e-9 for x in off)
    assert min(off) < 0.4 and max(off) > 2.5  # the whole range is drawn


def test_training_advances_at_the_true_rate_whatever_the_noise():
    noisy, rate = play(HIDDEN, 200)
    clean, clean_rate = play({**HIDDEN, "noise": 0.0, "outlierFraction": 0.0}, 200)
    assert clean_rate == rate
    assert [r["samples_done"] for r in noisy] == [r["samples_done"] for r in clean]
    assert noisy[-1]["samples_done"] == pytest.approx(199 * rate)  # one second per tick at the true rate
    assert {r["samples_per_second"] for r in clean} == {rate}
    assert len({r["samples_per_second"] for r in noisy}) == 200


def test_the_same_seed_and_name_give_the_same_reports():
    first, _ = play(HIDDEN, 50, seed=7)
    assert play(HIDDEN, 50, seed=7)[0] == first
    assert play(HIDDEN, 50, seed=7, namespace="elsewhere")[0] == first  # the stream is the seed's and the name's
    assert play(HIDDEN, 50, seed=8)[0] != first
    assert play(HIDDEN, 50, seed=7, name="another")[0] != first


def test_a_job_not_in_the_truth_file_is_unchanged():
    body = job_body(mode="none", batch_sizes=(32,), epochs=100)
    without = reports_of(body, None, 10, time_scale=60.0)
    assert reports_of(body, {"other-job": JobTruth.model_validate(HIDDEN)}, 10, time_scale=60.0) == without
    assert {r["samples_per_second"] for r in without} == {RESNET18.throughput(32, 1, 3.0, 62.5)}
    assert without[-1]["samples_done"] == pytest.approx(9 * 60.0 * RESNET18.throughput(32, 1, 3.0, 62.5))
