"""`stretto emulate-training`: play every Running worker of the dev cluster, whose kwok pods run nothing.

Each tick the emulator lists the TrainingJobs and their worker pods through the API. For a job
whose workers are all Running it advances training at the job model's rate for the allocation
the pods really got (GPUs from their limits, CPU and memory from their requests; synchronous
training runs at the slowest worker's pace), compressed by `--time-scale`; it switches batch size
at epoch boundaries as the job's adaptation mode would (the simulator's GNS / Accordion patterns,
`stretto.sim.batch_schedules`), and reports as worker 0 through `stretto.sdk.Reporter`, with the
token from the job's `<job>-progress` Secret: the real SDK path, token check included. A job
stops being reported once its work is done; the operator then marks it Succeeded.

When the operator asks the job to checkpoint (the SDK's reply says so: a worker is about to be
removed), the emulated job does what well-behaved training code does: it saves a checkpoint at the
samples done so far and stops training until the resize happens (its worker count changes) or the
request is withdrawn, so the shrink loses no work. Time held is not training time.

The reported samples/s is the model's rate (what a real worker would measure); the time scale
only compresses wall time. Loopback only: the progress URL must point at this machine.

A hidden truth (`--truth FILE`, given to the emulator only, never to the operator) says how a job
really behaves: the profile family it trains like, a throughput scale on that family, and the noise
and outliers of its telemetry. Training then advances at the true, noise-free rate for the
allocation held; only the reported samples/s is noisy (`ReportNoise`: its own stream per job, from
`--seed` and the job's name), and samples done stay the true ones. So the operator's online job
model can be shown to learn what it was never told. A job the file does not name plays the
operator's own belief, noise-free, as without the file.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import math
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, RootModel, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.api.quantity import parse_bytes, parse_quantity
from stretto.core.epoch_schedules import batch_size_at
from stretto.core.profile_loading import load_profile_book
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.report_noise import ReportNoiseModel
from stretto.core.snapshots import AdaptationMode
from stretto.devcluster.cluster import DevCluster
from stretto.devcluster.rest import ApiError, RestClient
from stretto.sdk import ProgressRejected, Reporter
from stretto.sdk.environment import ENV_PROGRESS_URL, progress_secret_name, token_from_secret
from stretto.sim.batch_schedules import schedule_for

log = logging.getLogger(__name__)

GIB = 2**30
DEFAULT_MODEL = "resnet50"  # as the operator's snapshot builder: the model of a job that names none
_FINAL_PHASES = ("Succeeded", "Failed")
_DONE_TOLERANCE = 1e-9
DEFAULT_SEED = 0
DEFAULT_OUTLIER_FACTOR = (0.3, 3.0)


# -- the pure part: an allocation, a training run, and time passing -------------------------------

@dataclass(frozen=True)
class WorkerAllocation:
    """What a job's running workers hold; None CPU/memory means the GPU-proportional share."""

    workers: int
    gpus_per_worker: int
    cpu_per_worker: float | None = None
    memory_gib_per_worker: float | None = None
    gpu_fraction: float = 1.0

    @property
    def gpus(self) -> int:
        return self.workers * self.gpus_per_worker

    def throughput(self, profile: ModelProfile, batch_size: int) -> float:
        per_gpu = max(1, self.gpus_per_worker)
        cpu = None if self.cpu_per_worker is None else self.cpu_per_worker / per_gpu
        memory = None if self.memory_gib_per_worker is None else self.memory_gib_per_worker / per_gpu
        return profile.throughput(batch_size, self.gpus, cpu, memory) * self.gpu_fraction


def _worker_resources(pod: dict[str, Any]) -> tuple[int, float | None, float | None, float]:
    container = pod["spec"]["containers"][0]
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    annotations = pod.get("metadata", {}).get("annotations") or {}
    gpus, fraction = int(parse_quantity(limits.get(contracts.GPU_RESOURCE, 0))), 1.0
    if gpus == 0 and contracts.GPU_SHARE_RESOURCE in limits:
        gpus, fraction = 1, int(annotations.get(contracts.ANNOTATION_GPU_MAX_UTIL, "100")) / 100
    cpu = float(parse_quantity(requests["cpu"])) if "cpu" in requests else None
    memory = parse_bytes(requests["memory"]) / GIB if "memory" in requests else None
    return gpus, cpu, memory, fraction


def allocation_from_pods(pods: Sequence[dict[str, Any]], *, min_workers: int = 1) -> WorkerAllocation | None:
    """The allocation of a job whose workers are all Running (at least `min_workers`); else None."""
    live = [p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")]
    if len(live) < max(1, min_workers) or any((p.get("status") or {}).get("phase") != "Running" for p in live):
        return None
    shapes = [_worker_resources(p) for p in live]
    if any(gpus <= 0 for gpus, _, _, _ in shapes):
        return None
    cpus = [c for _, c, _, _ in shapes]
    memories = [m for _, _, m, _ in shapes]
    return WorkerAllocation(
        workers=len(live), gpus_per_worker=min(g for g, _, _, _ in shapes),
        cpu_per_worker=None if None in cpus else min(c for c in cpus if c is not None),
        memory_gib_per_worker=None if None in memories else min(m for m in memories if m is not None),
        gpu_fraction=min(f for _, _, _, f in shapes),
    )


@dataclass(frozen=True)
class TrainingRun:
    """A job's training as the emulator plays it: work in samples, a batch-size schedule by epoch."""

    total_samples: float
    samples_per_epoch: float
    schedule: tuple[tuple[int, int], ...]
    initial_batch_size: int
    samples_done: float = 0.0
    samples_per_second: float = 0.0

    @property
    def epoch(self) -> float:
        return self.samples_done / self.samples_per_epoch

    @property
    def batch_size(self) -> int:
        last_epoch = max(0, math.ceil(self.total_samples / self.samples_per_epoch) - 1)
        return batch_size_at(self.schedule, min(int(self.epoch), last_epoch), self.initial_batch_size)

    @property
    def done(self) -> bool:
        return self.total_samples - self.samples_done <= _DONE_TOLERANCE * self.total_samples


def _snap(batch: int, allowed: Sequence[int]) -> int:
    """The largest allowed batch size not above `batch` (GNS doubling may step past the list)."""
    below = [b for b in allowed if b <= batch]
    return max(below) if below else min(allowed)


def training_run(job: TrainingJob, *, default_batch_size: int, samples_done: float = 0.0) -> TrainingRun:
    """The run of `job` from its spec: its work and the batch-size schedule of its adaptation mode."""
    spec = job.spec
    adaptation = spec.adaptation
    allowed = list(adaptation.batch_sizes) if adaptation else [default_batch_size]
    initial = adaptation.starting_batch_size if adaptation else default_batch_size
    mode = AdaptationMode(adaptation.mode if adaptation else "none")
    schedule = schedule_for(mode, epochs=spec.work.epochs, initial=initial, batch_sizes=allowed)
    snapped: list[tuple[int, int]] = []
    for first, batch in schedule:
        size = _snap(batch, allowed)
        if not snapped or snapped[-1][1] != size:
            snapped.append((first, size))
    total = float(spec.work.epochs * spec.work.samples_per_epoch)
    return TrainingRun(total_samples=total, samples_per_epoch=float(spec.work.samples_per_epoch),
                       schedule=tuple(snapped), initial_batch_size=initial,
                       samples_done=min(max(0.0, samples_done), total))


def advance(run: TrainingRun, *, profile: ModelProfile, allocation: WorkerAllocation, seconds: float) -> TrainingRun:
    """`run` after `seconds` of training on `allocation`, epoch by epoch (the batch may change at each)."""
    samples, left = run.samples_done, max(0.0, seconds)
    while left > 0 and not dataclasses.replace(run, samples_done=samples).done:
        rate = allocation.throughput(profile, dataclasses.replace(run, samples_done=samples).batch_size)
        if rate <= 0:
            break
        epoch_end = min((math.floor(samples / run.samples_per_epoch + 1e-9) + 1) * run.samples_per_epoch,
                        run.total_samples)
        needed = (epoch_end - samples) / rate
        if needed <= left:
            samples, left = epoch_end, left - needed
        else:
            samples, left = samples + left * rate, 0.0
    after = dataclasses.replace(run, samples_done=run.total_samples if dataclasses.replace(
        run, samples_done=samples).done else samples)
    return dataclasses.replace(after, samples_per_second=allocation.throughput(profile, after.batch_size))


def job_profile(job: TrainingJob, book: ProfileBook) -> ModelProfile:
    model = job.spec.profile.model if job.spec.profile and job.spec.profile.model in book else DEFAULT_MODEL
    return book.get(model)


# -- the hidden truth: how a job really trains and how noisy its telemetry is ----------------------

class JobTruth(BaseModel):
    """How one job really behaves; the emulator plays it, the operator never sees it."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True,
                              allow_inf_nan=False)

    family: str | None = Field(default=None, min_length=1,
                               description="the profile book's model it trains like; default: what the operator "
                               "believes (its spec.profile.model if the book has it, else resnet50)")
    throughput_scale: float = Field(default=1.0, gt=0, description="times the family's samples/s (1.3: 30 % faster)")
    noise: float = Field(default=0.0, ge=0, le=1,
                         description="relative sd of the multiplicative noise on each reported samples/s")
    outlier_fraction: float = Field(default=0.0, ge=0, le=1, description="share of reports that are outliers")
    outlier_factor: tuple[PositiveFloat, PositiveFloat] = Field(
        default=DEFAULT_OUTLIER_FACTOR, description="an outlier is the true rate times a factor log-uniform in "
        "[low, high]")

    @field_validator("outlier_factor")
    @classmethod
    def _low_le_high(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1]:
            raise ValueError(f"must be [low, high] with low <= high, got {list(value)}")
        return value


class _TruthFile(RootModel[dict[str, JobTruth]]):
    """The file: `{job name or namespace/name: truth}`."""

    @field_validator("root")
    @classmethod
    def _job_keys(cls, value: dict[str, JobTruth]) -> dict[str, JobTruth]:
        for key in value:
            parts = key.split("/")
            if len(parts) > 2 or not all(parts):
                raise ValueError(f"{key!r} is not a job name or namespace/name")
        return value


def load_truths(path: Path, book: ProfileBook) -> dict[str, JobTruth]:
    """The truth file at `path` (JSON, or YAML for any other suffix); a bad one raises ValueError naming the field."""
    path = Path(path)
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise ValueError(f"truth file {path}: cannot read it: {error}") from None
    try:
        truths = _TruthFile.model_validate({} if data is None else data).root
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(part) for part in e['loc']) or '(top level)'}: {e['msg']}"
                             for e in error.errors())
        raise ValueError(f"truth file {path}: {problems}") from None
    for key, truth in truths.items():
        if truth.family is not None and truth.family not in book:
            where = book.source or "the profile book"
            raise ValueError(f"truth file {path}: {key}.family: no profile {truth.family!r} in {where}; "
                             f"known: {', '.join(sorted(book.profiles))}")
    return truths


def truth_for(truths: dict[str, JobTruth], namespace: str, name: str) -> JobTruth | None:
    """The truth of `namespace/name`: its own entry, else the entry of its bare name, else None."""
    return truths.get(f"{namespace}/{name}") or truths.get(name)


def scaled_profile(profile: ModelProfile, scale: float) -> ModelProfile:
    """`profile` with every samples/s times `scale`; its CPU x memory sensitivity unchanged."""
    if scale == 1.0:
        return profile
    rates = {key: rate * scale for key, rate in profile.samples_per_second.items()}
    return dataclasses.replace(profile, samples_per_second=rates, source=f"{profile.source} (x{scale:g}: hidden truth)")


def true_profile(job: TrainingJob, truth: JobTruth | None, book: ProfileBook) -> ModelProfile:
    """The profile the job really trains at: its truth's family times its scale, else the operator's belief."""
    if truth is None:
        return job_profile(job, book)
    base = book.get(truth.family) if truth.family is not None else job_profile(job, book)
    return scaled_profile(base, truth.throughput_scale)


@dataclass(frozen=True)
class ReportFactor:
    """What one report's samples/s is multiplied by, and whether it is an outlier."""

    factor: float
    outlier: bool


class ReportNoise:
    """A hidden truth's noise on one job's reported samples/s (`stretto.core.report_noise`: the simulator's too)."""

    def __init__(self, truth: JobTruth, *, seed: int, job: str) -> None:
        self.model = ReportNoiseModel(noise=truth.noise, outlier_fraction=truth.outlier_fraction,
                                      outlier_factor=truth.outlier_factor, seed=seed)
        self._rng = self.model.stream(job)

    def draw(self) -> ReportFactor:
        factor, outlier = self.model.draw(self._rng)
        return ReportFactor(factor, outlier=outlier)


def is_loopback_url(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def progress_url_of(pod: dict[str, Any]) -> str | None:
    for entry in pod["spec"]["containers"][0].get("env") or []:
        if entry.get("name") == ENV_PROGRESS_URL and entry.get("value"):
            return str(entry["value"])
    return None


# -- the cluster part ------------------------------------------------------------------------------

@dataclass
class _EmulatedJob:
    run: TrainingRun
    profile: ModelProfile
    reporter: Reporter
    last_tick: float | None = None
    finished: bool = False
    workers: int = 0
    checkpointed_samples: float | None = None  # where the last checkpoint was saved
    holding: bool = False  # checkpoint saved on request: waits for the resize
    noise: ReportNoise | None = None  # the hidden truth's telemetry noise; None: reports the true rate


ReporterFactory = Callable[..., Reporter]


class TrainingEmulator:
    """Plays the workers of every TrainingJob; `tick()` once per interval."""

    def __init__(self, rest: RestClient, *, book: ProfileBook, time_scale: float = 60.0,
                 progress_url: str | None = None, namespaces: Sequence[str] = (),
                 clock: Callable[[], float] = time.monotonic, reporter_factory: ReporterFactory = Reporter,
                 truths: dict[str, JobTruth] | None = None, seed: int = DEFAULT_SEED) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if progress_url is not None and not is_loopback_url(progress_url):
            raise ValueError(f"progress URL {progress_url} is not on loopback")
        self.rest = rest
        self.book = book
        self.time_scale = time_scale
        self.progress_url = progress_url
        self.namespaces = tuple(namespaces)
        self.truths = dict(truths or {})
        self.seed = seed
        self._clock = clock
        self._reporter_factory = reporter_factory
        self._jobs: dict[tuple[str, str, str], _EmulatedJob] = {}
        self._warned: set[tuple[str, str, str]] = set()

    def _list(self, plural_path: str, query: str = "") -> list[dict[str, Any]]:
        if not self.namespaces:
            return list(self.rest.get(f"{plural_path.format(ns='')}{query}").get("items", []))
        items: list[dict[str, Any]] = []
        for namespace in self.namespaces:
            items += self.rest.get(f"{plural_path.format(ns=f'/namespaces/{namespace}')}{query}").get("items", [])
        return items

    def _warn_once(self, key: tuple[str, str, str], message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    def _start(self, key: tuple[str, str, str], body: dict[str, Any],
               pods: list[dict[str, Any]]) -> _EmulatedJob | None:
        namespace, name, _ = key
        url = self.progress_url or progress_url_of(pods[0])
        if url is None:
            self._warn_once(key, f"{namespace}/{name}: workers carry no {ENV_PROGRESS_URL}; pass --progress-url")
            return None
        if not is_loopback_url(url):
            self._warn_once(key, f"{namespace}/{name}: progress URL {url} is not on loopback; not reporting")
            return None
        try:
            secret = self.rest.get(f"/api/v1/namespaces/{namespace}/secrets/{progress_secret_name(name)}")
        except ApiError as error:
            if error.status != 404:
                raise
            self._warn_once(key, f"{namespace}/{name}: no Secret {progress_secret_name(name)} yet; waiting")
            return None
        token = token_from_secret(secret)
        if token is None:
            return None
        try:
            job = TrainingJob.model_validate(body)
        except ValidationError as error:
            self._warn_once(key, f"{namespace}/{name}: not a valid TrainingJob, not emulated: {error}")
            return None
        truth = truth_for(self.truths, namespace, name)
        profile = true_profile(job, truth, self.book)
        progress = (body.get("status") or {}).get("progress") or {}
        run = training_run(job, default_batch_size=profile.default_batch_size,
                           samples_done=float(progress.get("samplesDone") or 0.0))
        reporter = self._reporter_factory(url=url, token=token, namespace=namespace, job=name, worker=0,
                                          timeout_s=2.0, min_interval_s=0.0)
        if truth is None:
            log.info("%s/%s: emulating %s from epoch %.2f", namespace, name, profile.model, run.epoch)
            return _EmulatedJob(run=run, profile=profile, reporter=reporter)
        log.info("%s/%s: emulating the hidden truth %s x%g (report noise %g, outliers %g in x%g-x%g) from epoch %.2f",
                 namespace, name, profile.model, truth.throughput_scale, truth.noise, truth.outlier_fraction,
                 *truth.outlier_factor, run.epoch)
        return _EmulatedJob(run=run, profile=profile, reporter=reporter,
                            noise=ReportNoise(truth, seed=self.seed, job=name))

    def tick(self) -> int:
        """Advance and report every job whose workers all run; returns how many were reported."""
        jobs = self._list("/apis/stretto.io/v1alpha1{ns}/trainingjobs")
        selector = urllib.parse.quote(f"{contracts.LABEL_ROLE}={contracts.ROLE_WORKER}")
        pods = self._list("/api/v1{ns}/pods", f"?labelSelector={selector}")
        by_owner: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            for ref in pod.get("metadata", {}).get("ownerReferences") or []:
                by_owner.setdefault(ref.get("uid", ""), []).append(pod)
        seen, reported = set(), 0
        for body in jobs:
            metadata = body["metadata"]
            key = (metadata.get("namespace", "default"), metadata["name"], metadata["uid"])
            seen.add(key)
            if metadata.get("deletionTimestamp") or (body.get("status") or {}).get("phase") in _FINAL_PHASES:
                continue
            workers = by_owner.get(key[2], [])
            allocation = allocation_from_pods(workers, min_workers=body["spec"]["workers"]["min"])
            state = self._jobs.get(key)
            if allocation is None:
                if state is not None:
                    state.last_tick = None  # paused (scaling, pending): that time does not train
                continue
            if state is None:
                state = self._start(key, body, workers)
                if state is None:
                    continue
                self._jobs[key] = state
            if state.finished:
                continue
            now = self._clock()
            resumed = state.holding and allocation.workers != state.workers
            if resumed:  # resized: training resumes from the checkpoint it saved; the clock restarts here
                state.holding = False
                log.info("%s/%s: resized to %d workers; resuming from the checkpoint at %.0f samples",
                         key[0], key[1], allocation.workers, state.checkpointed_samples or 0.0)
            state.workers = allocation.workers
            elapsed = 0.0 if state.last_tick is None or state.holding or resumed else now - state.last_tick
            state.last_tick = now
            state.run = advance(state.run, profile=state.profile, allocation=allocation,
                                seconds=elapsed * self.time_scale)
            if self._report(key, state):
                reported += 1
        for gone in set(self._jobs) - seen:
            del self._jobs[gone]
        return reported

    def _report(self, key: tuple[str, str, str], state: _EmulatedJob) -> bool:
        run = state.run
        rate = run.samples_per_second if state.noise is None else run.samples_per_second * state.noise.draw().factor
        try:
            reply = state.reporter.report(epoch=run.epoch, samples_per_second=rate,
                                          batch_size=run.batch_size, samples_done=run.samples_done, force=True)
        except ProgressRejected as error:
            log.error("%s/%s: %s", key[0], key[1], error)
            return False
        if not reply.sent:
            return False
        if reply.accepted is not None and reply.accepted.clipped:
            log.warning("%s/%s: operator flagged the report: %s", key[0], key[1], reply.accepted.reason)
        if reply.checkpoint_requested and not state.holding:
            state.holding, state.checkpointed_samples = True, run.samples_done
            log.info("%s/%s: checkpoint requested; saved at %.0f samples (epoch %.2f), holding until the resize",
                     key[0], key[1], run.samples_done, run.epoch)
        elif state.holding and not reply.checkpoint_requested:
            state.holding = False  # the round kept the workers after all
            log.info("%s/%s: checkpoint request withdrawn; training on", key[0], key[1])
        if run.done:
            state.finished = True
            log.info("%s/%s: work done (%.0f samples); no more reports", key[0], key[1], run.samples_done)
        return True


# -- the command -----------------------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "emulate-training", help="play the workers of every TrainingJob on the dev cluster (kwok pods)",
        description="Advance each Running TrainingJob at its job model's rate for the allocation its pods got, "
        "change batch size per its adaptation mode, and report progress through the Stretto SDK.")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="the dev cluster's run directory (default $STRETTO_DEV_CLUSTER_DIR or "
                        "~/.local/state/stretto/dev-cluster)")
    parser.add_argument("--time-scale", type=float, default=60.0,
                        help="training seconds per wall second (default 60: a wall second is a minute of training)")
    parser.add_argument("--interval", type=float, default=1.0, help="wall seconds between ticks (default 1)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="stop after this many wall seconds (default 0: until SIGTERM or Ctrl-C)")
    parser.add_argument("--namespace", action="append", default=[],
                        help="emulate jobs of this namespace only (repeatable; default: all)")
    parser.add_argument("--progress-url", default=None,
                        help=f"operator progress endpoint (default: the workers' {ENV_PROGRESS_URL}); loopback only")
    parser.add_argument("--profiles", type=Path, default=None, help="profile book (default: the built-ins)")
    parser.add_argument("--truth", type=Path, default=None,
                        help="hidden truth per job, JSON or YAML: {job or namespace/job: {family, throughputScale, "
                        "noise, outlierFraction, outlierFactor: [low, high]}}; the operator never sees it")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the truth's report noise; each job's stream depends on it and the job's "
                        f"name only (default {DEFAULT_SEED})")
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.time_scale <= 0 or args.interval <= 0 or args.duration < 0:
        log.error("--time-scale and --interval must be positive, --duration >= 0")
        return 2
    try:  # a bad profile book or truth file is refused before anything else is looked at
        book = load_profile_book(args.profiles)
        truths = load_truths(args.truth, book) if args.truth is not None else None
    except ValueError as error:
        log.error("%s", error)
        return 2
    cluster = DevCluster(args.run_dir)
    state = cluster.load_state()
    if state is None:
        log.error("no dev cluster in %s (start one with `stretto dev-cluster up`)", cluster.run_dir)
        return 1
    try:
        emulator = TrainingEmulator(cluster.rest(state), book=book, time_scale=args.time_scale,
                                    progress_url=args.progress_url, namespaces=args.namespace, truths=truths,
                                    seed=args.seed)
    except ValueError as error:
        log.error("%s", error)
        return 2
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    started = time.monotonic()
    try:
        while not stop.is_set():
            try:
                emulator.tick()
            except (ApiError, OSError) as error:  # the API server busy or restarting: try next tick
                log.warning("tick failed: %s", error)
            if args.duration and time.monotonic() - started >= args.duration:
                break
            stop.wait(args.interval)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
