"""The progress ledger: checked reports in, JobState fields and status.progress out, restarts lose nothing."""

from __future__ import annotations

import threading

import pytest

from stretto.api.models import Progress
from stretto.core.predictors.bayesian_regime import predict_job
from stretto.core.snapshots import AdaptationMode, JobState
from stretto.operator.progress_ledger import JobProgressRecord, ProgressLedger, extend_history
from tests.operator.progress_fixtures import BOOK, context, job_body, report

EPOCH = 50_000


def feed(ledger: ProgressLedger, steps: list[tuple[float, int]]) -> JobProgressRecord:
    """Report (epoch, batch size) in order; samples follow the epochs."""
    ctx = context()
    for epoch, batch in steps:
        ledger.ingest(report(epoch=epoch, samples_done=epoch * EPOCH, batch_size=batch, samples_per_second=900.0), ctx)
    record = ledger.get("ns", "job")
    assert record is not None
    return record


@pytest.mark.parametrize(("history", "epoch", "batch", "want"), [
    ((), 0, 32, ((0, 32),)),
    ((), 4, 32, ((0, 32),)),
    (((0, 32),), 3, 32, ((0, 32),)),
    (((0, 32),), 3, 64, ((0, 32), (3, 64))),
    (((0, 32), (3, 64)), 3, 128, ((0, 32), (3, 128))),
    (((0, 32), (3, 64)), 3, 32, ((0, 32),)),
], ids=["first", "first report late", "unchanged", "change", "second change in the same epoch",
        "change back in the same epoch"])
def test_batch_size_history_is_run_length(history, epoch, batch, want):
    assert extend_history(history, epoch, batch) == want


def test_reports_build_the_run_length_history_and_the_job_state_fields():
    record = feed(ProgressLedger(clock=lambda: 5.0), [(0.5, 32), (1.0, 32), (2.4, 64), (3.0, 64), (5.0, 128)])
    assert record.batch_size_history == ((0, 32), (2, 64), (5, 128))
    assert record.job_state_fields(default_batch_size=32) == {
        "samples_done": 5 * EPOCH, "batch_size": 128, "batch_size_history": ((0, 32), (2, 64), (5, 128))}
    assert (record.reports, record.flagged_reports, record.last_worker, record.last_report_time) == (5, 0, 0, 5.0)


def test_flagged_reports_are_counted_with_the_last_reason():
    ledger = ProgressLedger()
    feed(ledger, [(2.0, 32)])
    response = ledger.ingest(report(epoch=1.0, samples_done=EPOCH, samples_per_second=1e9), context())
    assert response.accepted.clipped and "clipped" in response.accepted.reason
    record = ledger.get("ns", "job")
    assert record.samples_done == 2 * EPOCH and record.samples_per_second < 1e9
    assert (record.reports, record.flagged_reports) == (2, 1) and "below the recorded" in record.last_flag


def test_the_reply_carries_allocation_and_checkpoint_request():
    response = ProgressLedger().ingest(report(), context(checkpoint_requested=True))
    wire = response.model_dump(by_alias=True)
    assert wire["checkpointRequested"] is True
    assert wire["allocation"]["workers"] == 2 and wire["allocation"]["gpus"] == 2
    assert wire["accepted"] == {"samplesPerSecond": 1000.0, "clipped": False, "reason": ""}


def test_a_record_round_trips_through_status_progress():
    record = feed(ProgressLedger(clock=lambda: 7.0), [(1.0, 32), (2.5, 64)])
    status = record.progress_status(total_samples=10 * EPOCH)
    assert status["percent"] == 25.0 and status["batchSizeHistory"] == [[0, 32], [2, 64]]
    shown = Progress.model_validate(status)  # exactly the API's fields
    assert (shown.epoch, shown.batch_size, shown.samples_done) == (2.5, 64, 2.5 * EPOCH)
    assert record.reports_status() == {"lastReportTime": 7.0, "lastWorker": 0, "reports": 2, "flaggedReports": 0,
                                       "lastFlag": ""}
    assert JobProgressRecord.from_status(status, record.reports_status(), record.uid) == record
    assert JobProgressRecord.from_status(status).samples_done == record.samples_done  # bookkeeping optional


def test_the_whole_ledger_round_trips_and_restore_never_loses_progress():
    ledger = ProgressLedger(clock=lambda: 3.0)
    feed(ledger, [(1.0, 32), (4.0, 64)])
    ledger.ingest(report(job="other", epoch=0.5, samples_done=0.5 * EPOCH), context())
    copy = ProgressLedger.from_dict(ledger.to_dict())
    assert copy.jobs() == ledger.jobs() == [("ns", "job"), ("ns", "other")]
    assert all(copy.get(*key) == ledger.get(*key) for key in ledger.jobs())
    stale = JobProgressRecord(samples_done=EPOCH).progress_status(10 * EPOCH)
    assert ledger.restore("ns", "job", stale, uid="uid-job").samples_done == 4 * EPOCH  # an older status loses
    assert ledger.restore("ns", "new", stale).samples_done == EPOCH
    ledger.forget("ns", "new")
    assert ledger.get("ns", "new") is None


def test_a_job_applied_again_under_its_name_starts_from_zero_and_gone_jobs_are_dropped():
    ledger = ProgressLedger()
    feed(ledger, [(4.0, 64)])                                       # the first "job" (uid-job) did 4 epochs
    assert ledger.get("ns", "job", "uid-job").samples_done == 4 * EPOCH
    again = job_body()
    again["metadata"]["uid"] = "uid-again"
    assert ledger.get("ns", "job", "uid-again") is None             # its namesake's progress is not its own
    ledger.ingest(report(epoch=0.5, samples_done=0.5 * EPOCH), context(again))
    assert ledger.get("ns", "job", "uid-again").samples_done == 0.5 * EPOCH
    assert ledger.restore("ns", "job", None, uid="uid-again").samples_done == 0.5 * EPOCH
    assert ledger.retain({("ns", "job", "uid-again")}) == 0
    assert ledger.retain(set()) == 1 and ledger.jobs() == []


def test_concurrent_reports_keep_the_largest_and_count_every_one():
    ledger = ProgressLedger()
    ctx = context()

    def worker(index: int) -> None:
        for step in range(25):
            epoch = (index * 25 + step) / 40
            ledger.ingest(report(worker=index, epoch=epoch, samples_done=epoch * EPOCH), ctx)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = ledger.get("ns", "job")
    assert record.reports == 100
    assert record.samples_done == 99 / 40 * EPOCH


def job_state(record: JobProgressRecord) -> JobState:
    profile = BOOK.get("resnet18")
    return JobState(job_id="ns/job", model="resnet18", profile=profile, arrival_s=0.0, total_samples=10 * EPOCH,
                    samples_per_epoch=EPOCH, max_workers=2, adaptation=AdaptationMode.GNS,
                    batch_size_options=(32, 64, 128), **record.job_state_fields(default_batch_size=32))


def test_progress_reports_move_the_regime_posterior_and_the_predicted_finish_time():
    early = predict_job(job_state(feed(ProgressLedger(), [(1.0, 32)])), tolerance=0.4)
    later = predict_job(job_state(feed(ProgressLedger(), [(1.0, 32), (4.0, 32)])), tolerance=0.4)
    doubled = predict_job(job_state(feed(ProgressLedger(), [(1.0, 32), (2.0, 64), (4.0, 64)])), tolerance=0.4)
    assert later.remaining_seconds < early.remaining_seconds  # more work done: an earlier finish
    assert later.remaining_samples == 6 * EPOCH
    # The same progress with the batch doubled at epoch 2 shifts the posterior towards 64.
    assert doubled.remaining_epochs_by_batch_size[64] > later.remaining_epochs_by_batch_size.get(64, 0.0)
    assert doubled.remaining_epochs_by_batch_size[32] < later.remaining_epochs_by_batch_size[32]
