"""The SDK's Reporter against the real progress app served on 127.0.0.1."""

from __future__ import annotations

import socket

import pytest

from stretto.sdk import ProgressNotStored, ProgressRejected, Reporter
from tests.operator.progress_fixtures import Operator, job_body, serving, token

JOB, OTHER = job_body("job"), job_body("other")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def reporter(url: str, *, job: str = "job", bearer: str | None = None, **options) -> Reporter:
    return Reporter(url=url, token=bearer or token(JOB), namespace="ns", job=job, worker=0, **options)


def test_two_lines_report_progress_and_read_the_allocation():
    operator = Operator(JOB, checkpoint_requested=True)
    with serving(operator.app()) as url:
        env = {"STRETTO_PROGRESS_URL": url, "STRETTO_PROGRESS_TOKEN": token(JOB), "STRETTO_JOB_NAME": "job",
               "STRETTO_JOB_NAMESPACE": "ns", "STRETTO_WORKER_INDEX": "1"}
        sdk = Reporter.from_env(env)
        state = sdk.report(epoch=1.5, samples_per_second=1200.0, batch_size=64, samples_done=75_000)
    assert state.sent and state.checkpoint_requested and sdk.checkpoint_requested
    assert sdk.allocation == state.allocation
    assert (state.allocation.workers, state.allocation.gpus, state.allocation.cpu_per_worker) == (2, 2, "3")
    assert state.accepted.samples_per_second == 1200.0 and not state.accepted.clipped
    record = operator.ledger.get("ns", "job")
    assert (record.samples_done, record.batch_size, record.last_worker) == (75_000.0, 64, 1)


def test_a_forged_report_raises_and_is_not_recorded():
    operator = Operator(JOB, OTHER)
    with serving(operator.app()) as url, pytest.raises(ProgressRejected) as error:
        reporter(url, job="other").report(epoch=9.0, samples_per_second=10.0, batch_size=32)
    assert error.value.status == 403
    assert "does not authorize progress reports for ns/other" in str(error.value)
    assert operator.ledger.get("ns", "other") is None


def test_an_invalid_report_raises_with_the_servers_message():
    operator = Operator(JOB)
    with serving(operator.app()) as url, pytest.raises(ProgressRejected) as error:
        Reporter(url=url, token=token(JOB), namespace="n" * 64, job="job").report(
            epoch=1.0, samples_per_second=1.0, batch_size=32)
    assert error.value.status == 400 and "namespace" in error.value.message


def test_clipping_is_visible_to_the_worker():
    with serving(Operator(JOB).app()) as url:
        state = reporter(url).report(epoch=1.0, samples_per_second=1e7, batch_size=32)
    assert state.accepted.clipped and state.accepted.samples_per_second < 1e7
    assert "clipped" in state.accepted.reason


def test_reports_are_throttled_except_batch_changes_and_forced_ones():
    operator = Operator(JOB)
    clock = FakeClock()
    with serving(operator.app()) as url:
        sdk = reporter(url, min_interval_s=10.0, clock=clock)
        sent = [sdk.report(epoch=0.1, samples_per_second=900.0, batch_size=32).sent]
        clock.now = 5.0
        sent.append(sdk.report(epoch=0.2, samples_per_second=900.0, batch_size=32).sent)   # too soon
        sent.append(sdk.report(epoch=0.3, samples_per_second=900.0, batch_size=64).sent)   # batch changed
        sent.append(sdk.report(epoch=0.4, samples_per_second=900.0, batch_size=64, force=True).sent)
        clock.now = 16.0
        sent.append(sdk.report(epoch=0.5, samples_per_second=900.0, batch_size=64).sent)   # interval passed
    assert sent == [True, False, True, True, True]
    assert operator.ledger.get("ns", "job").reports == 4


def test_an_unreachable_operator_never_raises_into_training():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    operator = Operator(JOB)
    with serving(operator.app()) as url:
        sdk = reporter(url, min_interval_s=0.0)
        first = sdk.report(epoch=0.1, samples_per_second=900.0, batch_size=32)
    sdk.endpoint = f"http://127.0.0.1:{closed_port}/v1/progress"
    later = sdk.report(epoch=0.2, samples_per_second=900.0, batch_size=32)
    assert first.sent and not later.sent
    assert later.allocation == first.allocation  # the last known state comes back


def test_outside_stretto_the_reporter_is_off():
    sdk = Reporter.from_env({})
    assert not sdk.enabled
    state = sdk.report(epoch=1.0, samples_per_second=1.0, batch_size=8)
    assert not state.sent and state.allocation is None and not sdk.checkpoint_requested


@pytest.mark.parametrize("fields", [
    {"epoch": -1.0, "samples_per_second": 1.0, "batch_size": 8},
    {"epoch": 1.0, "samples_per_second": float("inf"), "batch_size": 8},
    {"epoch": 1.0, "samples_per_second": 1.0, "batch_size": 0},
], ids=["negative epoch", "infinite rate", "zero batch"])
def test_nonsense_is_refused_before_it_leaves_the_worker(fields):
    with pytest.raises(ValueError):
        Reporter(url="http://127.0.0.1:9", token="t", namespace="ns", job="job").report(**fields)


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError, match="http"):
        Reporter(url="ftp://example", token="t", namespace="ns", job="job")
    assert Reporter(url="http://h:1/v1/progress", token="t", namespace="ns", job="j").endpoint == "http://h:1/v1/progress"
    assert Reporter(url="http://h:1/", token="t", namespace="ns", job="j").endpoint == "http://h:1/v1/progress"


def test_finish_retries_the_last_report_with_backoff_until_it_is_stored():
    operator = Operator(JOB)
    operator.store_failures = 3
    waits: list[float] = []
    with serving(operator.app()) as url:
        state = reporter(url).finish(epoch=10.0, samples_per_second=900.0, batch_size=32, samples_done=500_000,
                                     first_retry_s=0.5, sleep=waits.append)
    assert state.sent and waits == [0.5, 1.0, 2.0]
    assert operator.ledger.get("ns", "job").samples_done == 500_000


def test_finish_gives_up_loudly_at_its_deadline():
    clock = FakeClock()
    operator = Operator(JOB)
    operator.store_failures = 100

    def sleep(seconds: float) -> None:
        clock.now += seconds

    with serving(operator.app()) as url, pytest.raises(ProgressNotStored, match="not stored after 5 attempts"):
        reporter(url, clock=clock).finish(epoch=10.0, samples_per_second=900.0, batch_size=32,
                                          timeout_s=10.0, first_retry_s=0.5, max_retry_s=4.0, sleep=sleep)
    assert operator.ledger.get("ns", "job") is None


def test_an_unreachable_operator_is_retried_with_backoff_not_on_every_step(caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    clock = FakeClock()
    operator = Operator(JOB)
    with serving(operator.app()) as url:
        sdk = reporter(url, min_interval_s=0.0, clock=clock)
        live = sdk.endpoint
        sdk.endpoint = f"http://127.0.0.1:{closed_port}/v1/progress"
        attempts = []
        for step in range(40):                      # a training loop reporting every 0.1 s for 4 s
            clock.now = step * 0.1
            before = len(caplog.records)
            sdk.report(epoch=0.1, samples_per_second=900.0, batch_size=32)
            attempts += [clock.now] if len(caplog.records) > before else []
        assert attempts == pytest.approx([0.0, 0.5, 1.5, 3.5])  # backing off 0.5, 1, 2 s
        assert "not stored (3 in a row)" in caplog.text
        sdk.endpoint = live
        clock.now = 8.0
        assert sdk.report(epoch=0.2, samples_per_second=900.0, batch_size=32).sent   # back, and stored
        clock.now = 8.1
        assert sdk.report(epoch=0.3, samples_per_second=900.0, batch_size=32).sent   # no backoff left
