"""The training emulator: progress for the allocation a job really got, batch sizes per its adaptation mode."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.core.epoch_schedules import batch_size_at
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.snapshots import AdaptationMode
from stretto.devcluster.rest import ApiError
from stretto.devcluster.training_emulator import (
    TrainingEmulator,
    WorkerAllocation,
    advance,
    allocation_from_pods,
    is_loopback_url,
    job_profile,
    training_run,
)
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
