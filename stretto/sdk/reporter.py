"""The progress reporter a worker calls from its training loop.

One POST per report to the operator's progress endpoint, bearer-authenticated with the job's
token. Reports are throttled (`min_interval_s`) so calling `report` every step costs nothing,
except that a change of batch size is sent at once: the operator's regime model learns from it.
The reply carries the job's current allocation and whether the operator asks for a checkpoint.

An acknowledged report is stored in the job's status. One that is not (the operator restarting,
unreachable, or unable to store it) is logged and simply sent again by the next `report`: progress
is cumulative, so resending is harmless. `finish` sends the last report and retries it with
backoff until the operator has stored it, so a job's end is never lost.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stretto.sdk.environment import (
    ENV_JOB_NAME,
    ENV_JOB_NAMESPACE,
    ENV_PROGRESS_TOKEN,
    ENV_PROGRESS_URL,
    ENV_WORKER_INDEX,
    progress_endpoint,
)

log = logging.getLogger(__name__)

_REFUSED = (400, 401, 403, 422)  # the report itself is wrong: retrying cannot help
# After a report that did not get through, the next unforced one waits (doubling, up to the max), so a
# training loop that reports every step does not stall on an operator that is down.
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.5, 30.0


class ProgressNotStored(TimeoutError):
    """`finish` could not get the final report stored before its deadline."""


class ProgressRejected(RuntimeError):
    """The operator refused the report (HTTP 400/401/403): a bad token or invalid fields."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"progress report refused (HTTP {status}): {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Allocation:
    """What the job holds now. CPU and memory are Kubernetes quantities ("12", "96Gi") or None."""

    workers: int
    gpus: int
    gpus_per_worker: int
    cpu_per_worker: str | None = None
    memory_per_worker: str | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Allocation:
        return cls(workers=int(data.get("workers", 0)), gpus=int(data.get("gpus", 0)),
                   gpus_per_worker=int(data.get("gpusPerWorker", 0)),
                   cpu_per_worker=data.get("cpuPerWorker"), memory_per_worker=data.get("memoryPerWorker"))


@dataclass(frozen=True)
class Accepted:
    """What the operator recorded: the throughput after its plausibility check, and why it differs."""

    samples_per_second: float
    clipped: bool
    reason: str = ""


@dataclass(frozen=True)
class ProgressState:
    """The last answer from the operator; `sent` is False when this call did not reach it."""

    allocation: Allocation | None = None
    checkpoint_requested: bool = False
    accepted: Accepted | None = None
    sent: bool = False


class Reporter:
    """Reports one job's progress. Figures are for the whole job (global batch, job samples/s)."""

    def __init__(
        self,
        *,
        url: str | None,
        token: str | None,
        namespace: str,
        job: str,
        worker: int = 0,
        timeout_s: float = 5.0,
        min_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{ENV_PROGRESS_URL} must be an http(s) URL, got {url!r}")
        self.endpoint = progress_endpoint(url) if url else None
        self._token = token
        self.namespace = namespace
        self.job = job
        self.worker = worker
        self.timeout_s = timeout_s
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._last_sent_at: float | None = None
        self._last_batch_size: int | None = None
        self._state = ProgressState()
        self._failures = 0                 # reports in a row that did not reach a storing operator
        self._retry_at: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **options: Any) -> Reporter:
        """A reporter configured by the variables Stretto sets on worker pods.

        Outside Stretto (no URL or token) the reporter is disabled: it logs once and every
        `report` returns an empty state, so the same script runs on a laptop.
        """
        env = os.environ if environ is None else environ
        url, token = env.get(ENV_PROGRESS_URL) or None, env.get(ENV_PROGRESS_TOKEN) or None
        if url is None or token is None:
            log.warning("%s or %s not set: progress reporting is off", ENV_PROGRESS_URL, ENV_PROGRESS_TOKEN)
            url = token = None
        return cls(url=url, token=token, namespace=env.get(ENV_JOB_NAMESPACE, "default"),
                   job=env.get(ENV_JOB_NAME, ""), worker=int(env.get(ENV_WORKER_INDEX, "0") or 0), **options)

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None and self._token is not None and bool(self.job)

    @property
    def state(self) -> ProgressState:
        return self._state

    @property
    def allocation(self) -> Allocation | None:
        return self._state.allocation

    @property
    def checkpoint_requested(self) -> bool:
        return self._state.checkpoint_requested

    def report(
        self,
        *,
        epoch: float,
        samples_per_second: float,
        batch_size: int,
        samples_done: float | None = None,
        force: bool = False,
    ) -> ProgressState:
        """Send the job's progress (throttled unless `force` or the batch size changed).

        `epoch` may be fractional (2.5 = half-way through the third epoch); `samples_done` is the
        job's cumulative samples (default: the operator derives it from the epoch).
        """
        numbers = {"epoch": epoch, "samples_per_second": samples_per_second}
        if samples_done is not None:
            numbers["samples_done"] = samples_done
        for name, value in numbers.items():
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        if not self.enabled:
            return self._state
        now = self._clock()
        due = (force or self._last_sent_at is None or batch_size != self._last_batch_size
               or now - self._last_sent_at >= self.min_interval_s)
        backing_off = not force and self._retry_at is not None and now < self._retry_at
        if not due or backing_off:
            return ProgressState(self._state.allocation, self._state.checkpoint_requested, self._state.accepted)
        body = {"namespace": self.namespace, "job": self.job, "worker": self.worker, "epoch": float(epoch),
                "samples_done": None if samples_done is None else float(samples_done),
                "samples_per_second": float(samples_per_second), "batch_size": int(batch_size),
                "timestamp": time.time()}
        reply = self._post(body)
        if reply is None:
            self._failures += 1
            wait = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (self._failures - 1))
            self._retry_at = now + wait
            log.warning("progress of %s/%s not stored (%d in a row); the next report goes in %.1fs at the "
                        "earliest", self.namespace, self.job, self._failures, wait)
            return ProgressState(self._state.allocation, self._state.checkpoint_requested, self._state.accepted)
        if self._failures:
            log.info("progress of %s/%s stored again after %d failed reports", self.namespace, self.job,
                     self._failures)
        self._failures, self._retry_at = 0, None
        self._last_sent_at, self._last_batch_size = now, batch_size
        self._state = _state_from_wire(reply)
        return self._state

    def finish(
        self, *, epoch: float, samples_per_second: float, batch_size: int, samples_done: float | None = None,
        timeout_s: float = 600.0, first_retry_s: float = 0.5, max_retry_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> ProgressState:
        """Send the final report and retry it, backing off, until the operator acknowledges it
        (stored). Raises ProgressNotStored after `timeout_s`, ProgressRejected if it is refused."""
        deadline = self._clock() + timeout_s
        wait = first_retry_s
        attempts = 0
        while True:
            attempts += 1
            state = self.report(epoch=epoch, samples_per_second=samples_per_second, batch_size=batch_size,
                                samples_done=samples_done, force=True)
            if state.sent or not self.enabled:
                return state
            if self._clock() + wait > deadline:
                raise ProgressNotStored(f"the final progress report of {self.namespace}/{self.job} was not "
                                        f"stored after {attempts} attempts in {timeout_s:.0f}s")
            log.warning("final progress report of %s/%s not stored yet (attempt %d); retrying in %.1fs",
                        self.namespace, self.job, attempts, wait)
            sleep(wait)
            wait = min(max_retry_s, wait * 2)

    def _post(self, body: dict[str, Any]) -> dict[str, Any] | None:
        assert self.endpoint is not None
        request = urllib.request.Request(
            self.endpoint, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return dict(json.loads(response.read().decode()))
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            if error.code in _REFUSED:
                raise ProgressRejected(error.code, _message(text)) from None
            log.warning("progress report for %s/%s not accepted (HTTP %s): %s", self.namespace, self.job,
                        error.code, _message(text))
        except (urllib.error.URLError, OSError, ValueError) as error:  # unreachable, timeout, bad JSON
            log.warning("progress report for %s/%s failed: %s", self.namespace, self.job, error)
        return None


def _message(text: str) -> str:
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500]
    return str(data.get("error", text))[:500] if isinstance(data, dict) else text[:500]


def _state_from_wire(reply: Mapping[str, Any]) -> ProgressState:
    allocation = reply.get("allocation")
    accepted = reply.get("accepted") or {}
    return ProgressState(
        allocation=Allocation.from_wire(allocation) if isinstance(allocation, Mapping) else None,
        checkpoint_requested=bool(reply.get("checkpointRequested", False)),
        accepted=Accepted(samples_per_second=float(accepted.get("samplesPerSecond", 0.0)),
                          clipped=bool(accepted.get("clipped", False)), reason=str(accepted.get("reason", ""))),
        sent=True,
    )
