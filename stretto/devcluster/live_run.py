"""A workload played live on a cluster: jobs applied at their (compressed) arrival times, watched to the end.

`LiveRun.step()` applies the jobs whose arrival has come, lists the TrainingJobs and worker pods once,
and records when each job was applied, first planned, first had all its workers Running and was seen
Succeeded (wall clock, monotonic). Each step also samples the GPUs the jobs' bound pods hold. `result()`
turns the records into the simulator's
`SimulationResult` in training seconds (wall × time scale), so `stretto.sim.metrics.summarise` and
`stretto.sim.plots` judge the live run exactly as they judge a simulated one. Through the API only.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stretto import contracts
from stretto.devcluster.demo_workload import Compression, training_job
from stretto.devcluster.rest import RestClient
from stretto.sim.simulator import JobOutcome, RoundRecord, SimulationResult
from stretto.sim.workloads import WorkloadJob


class JobFailed(RuntimeError):
    pass


@dataclass
class JobRecord:
    job: WorkloadJob
    applied: float | None = None
    planned: float | None = None
    running: float | None = None
    finished: float | None = None
    status: dict[str, Any] = field(default_factory=dict)
    paused_since: float | None = None  # a started job not training: resizing, or holding after a checkpoint
    pauses: list[float] = field(default_factory=list)  # wall seconds of each such pause that ended
    suspended: bool = False  # lost every worker: its next start is a restart, not a resize

    @property
    def total_samples(self) -> float:
        return float(self.job.epochs * (self.job.samples_per_epoch or 0))

    @property
    def fraction_done(self) -> float:
        done = float(((self.status.get("progress") or {}).get("samplesDone")) or 0.0)
        return min(1.0, done / self.total_samples) if self.total_samples else 0.0


@dataclass
class Sample:
    at: float
    active: int
    running: int
    gpus: int
    cpus: float
    memory_gib: float


class LiveRun:
    def __init__(self, rest: RestClient, namespace: str, jobs: list[WorkloadJob], compression: Compression,
                 *, total_gpus: int, total_cpus: float, total_memory_gib: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rest = rest
        self.namespace = namespace
        self.compression = compression
        self.records = {j.id: JobRecord(j) for j in sorted(jobs, key=lambda j: (j.arrival_s, j.id))}
        self.totals = (total_gpus, total_cpus, total_memory_gib)
        self.first_arrival = min(j.arrival_s for j in jobs)
        self.samples: list[Sample] = []
        self._clock = clock
        self.started: float | None = None

    @property
    def path(self) -> str:
        return f"/apis/{contracts.API_VERSION}/namespaces/{self.namespace}/{contracts.TRAININGJOB_PLURAL}"

    def start(self) -> None:
        self.rest.create("/api/v1/namespaces", {"metadata": {"name": self.namespace}})
        self.started = self._clock()

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self._clock() - self.started

    def due(self, record: JobRecord) -> float:
        """Wall seconds after the start at which this job is applied."""
        return self.compression.wall(record.job.arrival_s - self.first_arrival)

    def _apply_due(self) -> list[str]:
        applied = []
        for record in self.records.values():
            if record.applied is None and self.elapsed() >= self.due(record):
                self.rest.create(self.path, training_job(record.job))
                record.applied = self._clock()
                applied.append(record.job.id)
        return applied

    def step(self) -> list[str]:
        """Apply what is due, read every job's status once; returns the ids applied in this step."""
        if self.started is None:
            self.start()
        applied = self._apply_due()
        items = self.rest.get(self.path).get("items", [])
        selector = urllib.parse.quote(f"{contracts.LABEL_ROLE}={contracts.ROLE_WORKER}")
        pods = self.rest.get(f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={selector}").get("items", [])
        now = self._clock()
        workers: dict[str, list[str]] = {}
        holding: set[str] = set()  # jobs asked to checkpoint: the training code saves and waits for the resize
        bound_gpus: dict[str, int] = {}
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                job = (pod["metadata"].get("labels") or {}).get(contracts.LABEL_JOB, "")
                workers.setdefault(job, []).append((pod.get("status") or {}).get("phase", "Pending"))
                if contracts.ANNOTATION_CHECKPOINT_REQUESTED in (pod["metadata"].get("annotations") or {}):
                    holding.add(job)
                if pod["spec"].get("nodeName"):
                    limits = (pod["spec"]["containers"][0].get("resources") or {}).get("limits") or {}
                    bound_gpus[job] = bound_gpus.get(job, 0) + int(limits.get(contracts.GPU_RESOURCE, 0))
        active = running = gpus = 0
        cpus = memory = 0.0
        for body in items:
            record = self.records.get(body["metadata"]["name"])
            if record is None or record.applied is None:
                continue
            status = body.get("status") or {}
            record.status = status
            phase = status.get("phase")
            allocation = status.get("allocation") or {}
            if record.planned is None and (allocation.get("plannedWorkers") or 0) > 0:
                record.planned = now
            phases = workers.get(record.job.id, [])
            if record.running is None and len(phases) >= record.job.workers.min and \
                    all(p == "Running" for p in phases):
                record.running = now  # all its workers Running: from here the emulator trains it
            if record.finished is None and phase == "Succeeded":
                record.finished = now
            if record.running is not None and record.finished is None:
                self._track_pause(record, phases, record.job.id in holding, now)
            if phase == "Failed":
                raise JobFailed(f"TrainingJob {record.job.id} failed: {status.get('message')}")
            if record.finished is None:
                active += 1
                held = bound_gpus.get(record.job.id, 0)  # GPUs its bound, live pods hold now
                running += held > 0
                gpus += held
                share = held / max(1, self.totals[0])
                cpus += share * self.totals[1]  # the proportional packer: CPU and memory follow the GPUs
                memory += share * self.totals[2]
        self.samples.append(Sample(now, active, running, gpus, cpus, memory))
        return applied

    @property
    def done(self) -> bool:
        return all(r.finished is not None for r in self.records.values())

    @staticmethod
    def _track_pause(record: JobRecord, phases: list[str], holding: bool, now: float) -> None:
        training = len(phases) >= record.job.workers.min and all(p == "Running" for p in phases) and not holding
        if not phases:
            record.paused_since, record.suspended = None, True
        elif training:
            if record.paused_since is not None and not record.suspended:
                record.pauses.append(now - record.paused_since)
            record.paused_since, record.suspended = None, False
        elif record.paused_since is None:
            record.paused_since = now

    def resize_pauses(self) -> list[float]:
        """Wall seconds each started job spent not training while it kept workers: a resize (new workers
        starting, or a checkpoint held until surplus workers are gone)."""
        return [pause for r in self.records.values() for pause in r.pauses]

    def start_latencies(self, ids: set[str] | None = None) -> list[float]:
        """Wall seconds from applying a job to its workers all Running, for the jobs `ids` (default all).

        Pass the jobs that found GPUs free at once (the simulator starts them at their arrival): their
        latency is the operator's path alone (wake-up, round, pods created, bound, Running, first tick).
        """
        return [r.running - r.applied for r in self.records.values()
                if r.running is not None and r.applied is not None and (ids is None or r.job.id in ids)]

    def result(self, isolated_s: dict[str, float]) -> SimulationResult:
        """The run in the simulator's terms, training seconds from the first arrival; needs `done`."""
        if self.started is None or not self.done:
            raise RuntimeError("the live run has not finished")

        def training(at: float) -> float:
            return self.first_arrival + self.compression.training(at - self.started)

        outcomes = []
        for record in self.records.values():
            job = record.job
            assert record.applied is not None and record.finished is not None
            outcomes.append(JobOutcome(
                job_id=job.id, model=job.model, gpus=job.max_gpus, arrival_s=training(record.applied),
                first_start_s=training(record.running if record.running is not None else record.finished),
                finish_s=training(record.finished), isolated_s=isolated_s[job.id],
                attained_gpu_seconds=0.0))
        rounds = tuple(RoundRecord(training(s.at), s.active, s.running, s.gpus / self.totals[0],
                                   s.cpus / self.totals[1], s.memory_gib / self.totals[2], 0.0)
                       for s in self.samples if s.active)
        return SimulationResult(tuple(outcomes), rounds, self.totals[0])
