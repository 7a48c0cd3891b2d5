"""The operator's record of each job's progress, built from checked reports.

The progress server writes into it (`ingest`: check and record under one lock, so two workers
reporting at once cannot both pass the "never goes down" check); the round reads it
(`job_state_fields` for the `JobState`, `progress_status` for `status.progress`). A record
serialises to the `status.progress` dict (plus the bookkeeping of `reports_status`) and back, so
an operator restart loses nothing: `restore` each TrainingJob from its status when the operator
starts or first sees it. A record belongs to one TrainingJob uid: a job deleted and applied again
under the same name starts from zero, and `retain` drops the records of jobs that are gone.

The batch-size history is run-length encoded as ((first epoch, batch size), ...), the epoch being
the whole epoch in which the change was first reported (the first entry: epoch 0): the form
`JobState.batch_size_history` and the regime posterior use.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stretto.operator.progress_reports import (
    AcceptedReport,
    JobContext,
    ProgressReport,
    ProgressResponse,
    Verdict,
    check_report,
)


@dataclass(frozen=True)
class JobProgressRecord:
    uid: str = ""
    samples_done: float = 0.0
    epoch: float = 0.0
    batch_size: int | None = None
    samples_per_second: float = 0.0
    batch_size_history: tuple[tuple[int, int], ...] = ()
    last_report_time: float | None = None   # operator clock (unix seconds) when last accepted
    last_worker: int | None = None
    reports: int = 0
    flagged_reports: int = 0
    last_flag: str = ""

    def updated(self, verdict: Verdict, *, worker: int, now: float) -> JobProgressRecord:
        return dataclasses.replace(
            self, samples_done=verdict.samples_done, epoch=verdict.epoch, batch_size=verdict.batch_size,
            samples_per_second=verdict.samples_per_second,
            batch_size_history=extend_history(self.batch_size_history, int(verdict.epoch), verdict.batch_size),
            last_report_time=now, last_worker=worker, reports=self.reports + 1,
            flagged_reports=self.flagged_reports + (1 if verdict.clipped else 0),
            last_flag=verdict.reason if verdict.clipped else self.last_flag,
        )

    def progress_status(self, total_samples: float) -> dict[str, Any]:
        """`status.progress`: exactly the fields of the API's `Progress` model (camelCase, JSON-safe)."""
        percent = 100.0 * self.samples_done / total_samples if total_samples > 0 else 0.0
        return {
            "epoch": self.epoch,
            "percent": round(min(100.0, percent), 2),
            "samplesDone": self.samples_done,
            "batchSize": self.batch_size,
            "samplesPerSecond": self.samples_per_second,
            "batchSizeHistory": [[first, size] for first, size in self.batch_size_history],
        }

    def reports_status(self) -> dict[str, Any]:
        """The ledger's bookkeeping (for e.g. `status.progressReports`): when, from whom, how many flagged."""
        return {"lastReportTime": self.last_report_time, "lastWorker": self.last_worker, "reports": self.reports,
                "flaggedReports": self.flagged_reports, "lastFlag": self.last_flag}

    @classmethod
    def from_status(cls, progress: Mapping[str, Any], reports: Mapping[str, Any] | None = None,
                    uid: str = "") -> JobProgressRecord:
        """The record `progress_status` and `reports_status` wrote (missing fields: their defaults)."""
        reports = reports or {}
        batch = progress.get("batchSize")
        last, worker = reports.get("lastReportTime"), reports.get("lastWorker")
        return cls(
            uid=uid,
            samples_done=float(progress.get("samplesDone") or 0.0),
            epoch=float(progress.get("epoch") or 0.0),
            batch_size=int(batch) if batch else None,
            samples_per_second=float(progress.get("samplesPerSecond") or 0.0),
            batch_size_history=tuple((int(e), int(b)) for e, b in progress.get("batchSizeHistory") or []),
            last_report_time=float(last) if last is not None else None,
            last_worker=int(worker) if worker is not None else None,
            reports=int(reports.get("reports") or 0),
            flagged_reports=int(reports.get("flaggedReports") or 0),
            last_flag=str(reports.get("lastFlag") or ""),
        )

    def job_state_fields(self, *, default_batch_size: int) -> dict[str, Any]:
        """`samples_done`, `batch_size`, `batch_size_history` keyword arguments of `JobState`."""
        return {"samples_done": self.samples_done, "batch_size": self.batch_size or default_batch_size,
                "batch_size_history": self.batch_size_history}


def extend_history(history: tuple[tuple[int, int], ...], epoch: int, batch_size: int) -> tuple[tuple[int, int], ...]:
    """Append a batch size at `epoch` if it changed; a change within the entry's own epoch replaces it.

    The first entry starts at epoch 0: epochs before the first report ran at the first size reported.
    """
    if not history:
        return ((0, batch_size),)
    if history[-1][1] == batch_size:
        return history
    if history[-1][0] >= epoch:
        trimmed = history[:-1]
        if trimmed and trimmed[-1][1] == batch_size:
            return trimmed
        return (*trimmed, (history[-1][0], batch_size))
    return (*history, (epoch, batch_size))


class ProgressLedger:
    """Thread-safe; keyed by (namespace, job name). Records are immutable and replaced whole."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], JobProgressRecord] = {}

    def ingest(self, report: ProgressReport, context: JobContext) -> ProgressResponse:
        """Check `report` against `context` and what is recorded; record it; build the reply."""
        key = (report.namespace, report.job)
        with self._lock:
            previous = self._records.get(key)
            if previous is None or previous.uid != context.uid:
                previous = JobProgressRecord(uid=context.uid)
            verdict = check_report(report, context, recorded_samples=previous.samples_done,
                                   recorded_epoch=previous.epoch, recorded_batch_size=previous.batch_size)
            self._records[key] = previous.updated(verdict, worker=report.worker, now=self._clock())
        return ProgressResponse(
            allocation=context.allocation_view(), checkpoint_requested=context.checkpoint_requested,
            accepted=AcceptedReport(samples_per_second=verdict.samples_per_second, clipped=verdict.clipped,
                                    reason=verdict.reason),
        )

    def get(self, namespace: str, job: str, uid: str | None = None) -> JobProgressRecord | None:
        """The job's record; with `uid`, only if it is that TrainingJob's (not a deleted namesake's)."""
        with self._lock:
            record = self._records.get((namespace, job))
        return record if record is not None and (uid is None or record.uid == uid) else None

    def restore(self, namespace: str, job: str, progress: Mapping[str, Any] | None,
                reports: Mapping[str, Any] | None = None, uid: str = "") -> JobProgressRecord:
        """Seed a job from its persisted status (progress, reports); keeps whichever has more samples,
        and replaces a record of another uid."""
        persisted = JobProgressRecord.from_status(progress or {}, reports, uid)
        with self._lock:
            current = self._records.get((namespace, job))
            if current is None or current.uid != uid or persisted.samples_done > current.samples_done:
                self._records[(namespace, job)] = persisted
                return persisted
            return current

    def forget(self, namespace: str, job: str) -> None:
        with self._lock:
            self._records.pop((namespace, job), None)

    def retain(self, jobs: set[tuple[str, str, str]]) -> int:
        """Keep only the records of these (namespace, name, uid); returns how many were dropped."""
        with self._lock:
            gone = [key for key, record in self._records.items() if (*key, record.uid) not in jobs]
            for key in gone:
                del self._records[key]
        return len(gone)

    def jobs(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._records)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every record as {"<namespace>/<job>": {"progress": ..., "reports": ...}} (percent against no total)."""
        with self._lock:
            items = list(self._records.items())
        return {f"{ns}/{job}": {"progress": record.progress_status(math.inf), "reports": record.reports_status(),
                                "uid": record.uid}
                for (ns, job), record in items}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]], clock: Callable[[], float] = time.time) -> ProgressLedger:
        ledger = cls(clock)
        for key, entry in data.items():
            namespace, _, job = key.partition("/")
            ledger.restore(namespace, job, entry.get("progress"), entry.get("reports"), str(entry.get("uid") or ""))
        return ledger
