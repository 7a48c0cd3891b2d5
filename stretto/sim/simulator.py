"""The simulator: a virtual clock that feeds snapshots to the very round the operator runs.

Events sit in a heap ordered (time, kind, sequence): arrivals before the round at the same
instant, ties by workload order, so a run is a deterministic function of its inputs. Every
`round_seconds` the simulator builds a `ClusterSnapshot`, calls `run_round`, and advances each
allocated job through its epochs at the job model's throughput for the CPU and memory it got (on its
placement, where the profile measures placements: `ModelProfile.throughput_on`),
switching batch size at epoch boundaries. A job that did not run the previous round first pays
`restore_overhead_s` (checkpoint restore; Shockwave charges 20 s); one whose GPU count changed pays
`resize_overhead_s` (an elastic restart; 0 by default, as in the peers); with `move_costs_restore`, one
that kept its GPU count on other nodes or GPUs pays `restore_overhead_s` (Pollux restarts a job on every
allocation change). GPUs freed by a job that
finishes mid-round stay idle until the next round, as in both peers' simulators.

A job on a shared GPU (`WorkerPlacement.shared_with`, from a packer with `share_gpus`) runs at its
co-located speed: its isolated rate (the job model at its CPU and memory per GPU's worth) times its
relative speed beside its partner (`stretto.core.colocation`), the partner's batch size read at the
start of the round. It stays at that speed for the whole round even if the partner finishes early
(the GPU is not re-shared mid-round, as freed GPUs stay idle). It attains half a GPU-second per
second, and a shared GPU counts once in utilisation (half for each job).

What the core is told about a job is `SimulationConfig.job_model`: its true profile ("oracle", the
default), or the throughput posterior the live operator would hold, learned from one noisy report
per round it ran (`stretto.sim.learned_profiles`); the truth drives progress and metrics either way.
With `profiling`, a job nobody knows is profiled (`stretto.core.profiling`) and one whose CPU or
memory per GPU changed pays `resize_overhead_s`: we model a probe as new workers at the new size (a
restart from checkpoint), not an in-place pod resize.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.colocation import CoLocationTable, JobKey
from stretto.core.decisions import RoundDecision
from stretto.core.epoch_schedules import Schedule, batch_size_at, samples_by_batch_size, seconds_for
from stretto.core.fair_share import ScalingCurve, scaling_curve
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.report_noise import ReportNoiseModel
from stretto.core.rounds import RoundPlugins, run_round
from stretto.core.snapshots import (
    EMPTY_STATE,
    AdaptationMode,
    ClusterSnapshot,
    JobAllocation,
    JobState,
    NodeState,
    PolicyState,
)
from stretto.sim.batch_schedules import schedule_for
from stretto.sim.learned_profiles import JobModelView, LearnedProfiles
from stretto.sim.workloads import WorkloadError, WorkloadJob

ARRIVAL, ROUND = 0, 1
DONE_TOLERANCE = 1e-9


class SimulationConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    round_seconds: float = Field(300.0, gt=0, description="length of a round, seconds")
    restore_overhead_s: float = Field(0.0, ge=0, description="seconds lost by a job that did not run last round")
    resize_overhead_s: float = Field(
        0.0, ge=0, description="seconds lost by a job whose GPU count changed since last round (an elastic restart: "
        "torchrun restarts every worker from its checkpoint when the membership changes)"
    )
    move_costs_restore: bool = Field(
        False, description="a job moved to other nodes or GPUs with the same GPU count pays restore_overhead_s "
        "(Pollux's simulator: every allocation change is a restart); off, a move is free as in Synergy and Shockwave"
    )
    finish_at_round_end: bool = Field(False, description="record completions at the end of the round (Synergy)")
    max_simulated_s: float = Field(1e8, gt=0, description="stop (with an error) past this virtual time")
    max_rounds: int | None = Field(
        None, ge=1, description="stop after this many rounds (a benchmark of round times); the result then has the "
        "outcomes of the jobs finished by then only"
    )
    workers_can_move: bool = Field(
        True, description="re-place every job each round (the peers' simulators); False keeps running workers put"
    )
    batch_switch: Literal["epoch", "round"] = Field(
        "epoch",
        description="when a job takes its next batch size: at the epoch boundary, or as Shockwave's simulator "
        "does, after the next round it runs (GNS doubling at most once a round) with progress rounded up to an epoch",
    )
    job_model: JobModelView = Field(
        "oracle", description="what the core is told of each job: its true profile (oracle); the posterior learned "
        "from its reports, from its family's prior (learned) or, the family name hidden, the generic prior "
        "(learned-unknown)"
    )
    report_noise: float = Field(0.1, ge=0, le=1, description="learned: relative sd of each report's noise")
    report_outlier_fraction: float = Field(
        0.05, ge=0, le=1, description="learned: share of reports that are outliers (x0.3-x3, log-uniform)"
    )
    report_seed: int = Field(0, description="learned: seed of the reports' noise (each job its own stream)")
    profiling: bool = Field(
        False, description="learned: profile the CPU knee of each job whose CPU/memory sensitivity is unknown "
        "(stretto.core.profiling); a job whose CPU or memory per GPU changed pays resize_overhead_s (a new worker size "
        "is a new worker: workers are re-created at the probe, not resized in place)"
    )


@dataclass(slots=True)
class JobProgress:
    """The simulator's mutable record of one job; frozen into a `JobState` each round."""

    spec: WorkloadJob
    schedule: Schedule
    total_samples: float
    samples_per_epoch: float
    samples_done: float = 0.0
    attained_gpu_seconds: float = 0.0
    run_seconds: float = 0.0
    first_start_s: float | None = None
    last_run_end_s: float | None = None
    finish_s: float | None = None
    history: list[tuple[int, int]] = field(default_factory=list)
    granted_batch_size: int | None = None  # batch_switch="round": the size the job runs at until it is switched

    def epoch(self) -> int:
        return int((self.samples_done + DONE_TOLERANCE) // self.samples_per_epoch)

    def scheduled_batch_size(self) -> int:
        return batch_size_at(self.schedule, self.epoch(), self.spec.batch_size)

    def batch_size(self) -> int:
        return self.scheduled_batch_size() if self.granted_batch_size is None else self.granted_batch_size


@dataclass(frozen=True, slots=True)
class JobOutcome:
    job_id: str
    model: str
    gpus: int
    arrival_s: float
    first_start_s: float
    finish_s: float
    isolated_s: float
    attained_gpu_seconds: float
    # T(g): seconds for the whole job on g GPUs, each whole-worker count of its range (`stretto.core.fair_share`);
    # empty: the job is read as rigid on `gpus` GPUs taking `isolated_s`.
    scaling: ScalingCurve = ()

    @property
    def jct_s(self) -> float:
        return self.finish_s - self.arrival_s


@dataclass(frozen=True, slots=True)
class RoundRecord:
    time_s: float
    active_jobs: int
    running_jobs: int
    gpu_utilisation: float
    cpu_utilisation: float
    memory_utilisation: float
    solver_s: float
    shared_jobs: int = 0  # jobs on a shared GPU this round


@dataclass(frozen=True, slots=True)
class SimulationResult:
    outcomes: tuple[JobOutcome, ...]
    rounds: tuple[RoundRecord, ...]
    total_gpus: int


ProgressFn = Callable[[float, int, int], None]  # (virtual time, jobs finished, jobs in all)


def _work_by_batch_size(progress: JobProgress) -> dict[int, float]:
    return samples_by_batch_size(
        progress.schedule,
        samples_per_epoch=progress.samples_per_epoch,
        start_sample=0.0,
        end_sample=progress.total_samples,
        default_batch_size=progress.spec.batch_size,
    )


def _gpus_by_node(allocation: JobAllocation) -> tuple[int, ...]:
    """GPUs on each node in worker order, consecutive workers on one node together (the placement's shape)."""
    counts: list[int] = []
    last: str | None = None
    for w in allocation.workers:
        if w.node == last:
            counts[-1] += len(w.gpu_indices)
        else:
            counts.append(len(w.gpu_indices))
            last = w.node
    return tuple(counts)


def _moved(before: JobAllocation, after: JobAllocation) -> bool:
    """Whether a job's workers sit on other nodes or GPUs than last round (worker order aside)."""
    def where(a: JobAllocation) -> list[tuple[str, tuple[int, ...]]]:
        return sorted((w.node, tuple(sorted(w.gpu_indices))) for w in a.workers)

    return where(before) != where(after)


def goodput_seconds(progress: JobProgress, profiles: ProfileBook, gpus: int) -> float:
    """A goodput job's whole run on `gpus` GPUs at each epoch's goodput-best batch in its range (the truth)."""
    model = profiles.get(progress.spec.model).goodput
    assert model is not None
    seconds = model.seconds(gpus, 0.0, 1.0, foresight=True, batch_range=progress.spec.adaptation.batch_range)
    return seconds * progress.total_samples / model.total_progress


def _resized(before: JobAllocation, after: JobAllocation) -> bool:
    """Whether a job's CPUs or memory per GPU changed since last round: new workers of another size."""
    return (abs(before.cpu_per_gpu - after.cpu_per_gpu) > 1e-6
            or abs(before.memory_gib_per_gpu - after.memory_gib_per_gpu) > 1e-6)


def isolated_seconds(progress: JobProgress, profiles: ProfileBook) -> float:
    """The job alone on its requested GPUs at the GPU-proportional share, no overheads."""
    if progress.spec.adaptation.mode is AdaptationMode.GOODPUT:
        return goodput_seconds(progress, profiles, progress.spec.max_gpus)
    return seconds_for(profiles.get(progress.spec.model), _work_by_batch_size(progress), gpus=progress.spec.max_gpus)


def job_scaling_curve(progress: JobProgress, profiles: ProfileBook) -> ScalingCurve:
    """The whole job's seconds on each whole-worker count of its range (what its fair run time needs)."""
    spec = progress.spec
    if spec.adaptation.mode is AdaptationMode.GOODPUT:
        return tuple((n * spec.gpus_per_worker, goodput_seconds(progress, profiles, n * spec.gpus_per_worker))
                     for n in range(spec.workers.min, spec.workers.max + 1))
    return scaling_curve(profiles.get(spec.model), _work_by_batch_size(progress), min_workers=spec.workers.min,
                         max_workers=spec.workers.max, gpus_per_worker=spec.gpus_per_worker)


def batch_size_options(progress: JobProgress) -> tuple[int, ...]:
    """The batch sizes a job's spec allows: its initial one, its schedule's values, its declared ones.

    Shockwave's prior knows this set (not when each size is used); so may Stretto's predictors.
    """
    sizes = {progress.spec.batch_size, *progress.spec.adaptation.batch_sizes}
    sizes.update(b for _, b in progress.schedule)
    return tuple(sorted(sizes))


class Simulator:
    def __init__(
        self,
        *,
        workload: Sequence[WorkloadJob],
        nodes: tuple[NodeState, ...],
        profiles: ProfileBook,
        plugins: RoundPlugins,
        config: SimulationConfig,
        colocation: CoLocationTable | None = None,
    ) -> None:
        self.nodes = nodes
        self.profiles = profiles
        self.plugins = plugins
        self.config = config
        # Speeds on a shared GPU: the given table, else the packer's own (the model it shared by).
        self.colocation = colocation if colocation is not None else getattr(plugins.packer, "colocation", None)
        self.total_gpus = sum(n.gpus for n in nodes)
        largest_node = max(n.gpus for n in nodes)
        self.jobs: list[JobProgress] = []
        for number, spec in enumerate(workload, start=1):
            if spec.workers.min * spec.gpus_per_worker > self.total_gpus or spec.gpus_per_worker > largest_node:
                raise WorkloadError(f"job {number} ({spec.id}): field 'workers': needs more GPUs than the cluster has")
            profile = profiles.get(spec.model)
            goodput = spec.adaptation.mode is AdaptationMode.GOODPUT
            if goodput and (profile.goodput is None or config.job_model != "oracle"):
                raise WorkloadError(f"job {number} ({spec.id}): field 'adaptation.mode': goodput needs a profile "
                                    f"with a goodput model (Pollux's traces) and job_model oracle")
            per_epoch = spec.samples_per_epoch or profile.samples_per_epoch
            if per_epoch is None:
                raise WorkloadError(
                    f"job {number} ({spec.id}): field 'samples_per_epoch': required, "
                    f"profile {spec.model!r} has no dataset size"
                )
            epochs = math.ceil(spec.epochs - 1e-9)
            schedule = spec.adaptation.schedule or schedule_for(
                spec.adaptation.mode,
                epochs=epochs,
                initial=spec.batch_size,
                batch_sizes=spec.adaptation.batch_sizes,
            )
            self.jobs.append(JobProgress(spec, schedule, spec.epochs * per_epoch, float(per_epoch)))
        self.learned: LearnedProfiles | None = None
        if config.profiling and config.job_model == "oracle":
            raise ValueError("profiling needs a learned job model: the oracle already knows every sensitivity")
        if config.job_model != "oracle":
            self.learned = LearnedProfiles(
                profiles, hide_family=config.job_model == "learned-unknown",
                noise=ReportNoiseModel(noise=config.report_noise, outlier_fraction=config.report_outlier_fraction,
                                       seed=config.report_seed),
                profiling=config.profiling,
            )
            for p in self.jobs:
                self.learned.add(p.spec.id, model=p.spec.model, batch_size=p.spec.batch_size,
                                 samples_per_epoch=p.samples_per_epoch, batch_sizes=batch_size_options(p),
                                 gpus_per_worker=p.spec.gpus_per_worker, min_workers=p.spec.workers.min,
                                 max_workers=p.spec.workers.max)

    # -- one round ----------------------------------------------------------------------------
    def _snapshot(
        self,
        now: float,
        index: int,
        active: list[JobProgress],
        previous: dict[str, JobAllocation],
        policy_state: PolicyState,
        seen: int,
    ) -> ClusterSnapshot:
        states = tuple(
            JobState(
                job_id=p.spec.id,
                model=p.spec.model,
                profile=self.belief(p),
                probe_cpus_per_gpu=() if self.learned is None else self.learned.probes(p.spec.id),
                arrival_s=p.spec.arrival_s,
                total_samples=p.total_samples,
                samples_per_epoch=p.samples_per_epoch,
                batch_size=p.batch_size(),
                samples_done=p.samples_done,
                min_workers=p.spec.workers.min,
                max_workers=p.spec.workers.max,
                gpus_per_worker=p.spec.gpus_per_worker,
                tenant=p.spec.tenant,
                weight=p.spec.weight,
                adaptation=p.spec.adaptation.mode,
                attained_gpu_seconds=p.attained_gpu_seconds,
                run_seconds=p.run_seconds,
                first_start_s=p.first_start_s,
                last_run_end_s=p.last_run_end_s,
                batch_size_history=tuple(p.history),
                planned_batch_sizes=tuple(p.schedule),
                batch_size_options=batch_size_options(p),
                batch_size_range=p.spec.adaptation.batch_range,
            )
            for p in active
        )
        return ClusterSnapshot(
            now_s=now,
            round_index=index,
            round_seconds=self.config.round_seconds,
            jobs=states,
            nodes=self.nodes,
            previous=MappingProxyType(dict(previous)),
            policy_state=policy_state,
            total_jobs_seen=seen,
            workers_can_move=self.config.workers_can_move,
        )

    def belief(self, p: JobProgress) -> ModelProfile:
        """The profile the core is told: the truth (oracle), else the job's learned posterior."""
        return self.profiles.get(p.spec.model) if self.learned is None else self.learned.profile(p.spec.id)

    def _report(self, p: JobProgress, allocation: JobAllocation, lost_s: float, shared: bool) -> None:
        """After a round it trained in, the job reports its true rate, with noise, at the allocation it held
        (on its placement, as it ran: `_advance`).

        The batch size is the last one it ran at (a report is the current rate). A round on a shared GPU
        reports nothing: the rate beside a partner is not the isolated rate the model learns.
        """
        if self.learned is None or shared or lost_s >= self.config.round_seconds or not p.history:
            return
        batch = p.history[-1][1]
        cpu, mem = allocation.cpu_per_gpu, allocation.memory_gib_per_gpu
        true_rate = self.profiles.get(p.spec.model).throughput_on(batch, _gpus_by_node(allocation), cpu, mem)
        if true_rate > 0:
            self.learned.observe(p.spec.id, gpus=allocation.gpus, batch_size=batch, cpu_per_gpu=cpu,
                                 memory_gib_per_gpu=mem, true_samples_per_second=true_rate)

    def _relative_speed(self, p: JobProgress, batch: int, partner: JobKey | None) -> float:
        """The job's speed beside its GPU partner relative to alone (1 unshared; 1/2, time-sliced, if unmeasured)."""
        if partner is None:
            return 1.0
        if self.colocation is None:
            raise RuntimeError(f"job {p.spec.id} shares a GPU but the simulator has no co-location table")
        speeds = self.colocation.relative_speeds((p.spec.model, batch), partner)
        return 0.5 if speeds is None else speeds[0]

    def _advance(
        self,
        p: JobProgress,
        allocation: JobAllocation,
        start: float,
        lost_s: float,
        partner: JobKey | None = None,
        chosen_batch: int | None = None,
    ) -> None:
        """Run one job for one round on its allocation (beside `partner`, (model, batch size), if shared);
        a goodput job at `chosen_batch` (the policy's), else its own goodput-best for its GPUs."""
        length = self.config.round_seconds
        profile = self.profiles.get(p.spec.model)
        cpu, mem, by_node = allocation.cpu_per_gpu, allocation.memory_gib_per_gpu, _gpus_by_node(allocation)
        t = min(lost_s, length)
        epoch_switch = self.config.batch_switch == "epoch"
        if p.spec.adaptation.mode is AdaptationMode.GOODPUT:
            t = self._run_goodput(p, by_node, chosen_batch, t)
            epoch_switch = False
        elif not epoch_switch:
            batch = p.batch_size()
            rate = profile.throughput_on(batch, by_node, cpu, mem) * self._relative_speed(p, batch, partner)
            t = self._run_at_granted_batch_size(p, length, t, rate)
        while epoch_switch and t < length and p.total_samples - p.samples_done > DONE_TOLERANCE * p.total_samples:
            epoch = p.epoch()
            batch = batch_size_at(p.schedule, epoch, p.spec.batch_size)
            if not p.history or p.history[-1][1] != batch:
                p.history.append((epoch, batch))
            rate = profile.throughput_on(batch, by_node, cpu, mem) * self._relative_speed(p, batch, partner)
            if rate <= 0:
                break
            epoch_end = min((epoch + 1) * p.samples_per_epoch, p.total_samples)
            needed = (epoch_end - p.samples_done) / rate
            if t + needed <= length:
                p.samples_done, t = epoch_end, t + needed
            else:
                p.samples_done += (length - t) * rate
                t = length
        held = t if p.total_samples - p.samples_done <= DONE_TOLERANCE * p.total_samples else length
        p.attained_gpu_seconds += held * allocation.gpu_share
        p.run_seconds += held
        p.first_start_s = start if p.first_start_s is None else p.first_start_s
        p.last_run_end_s = start + held
        if p.total_samples - p.samples_done <= DONE_TOLERANCE * p.total_samples:
            p.samples_done = p.total_samples
            p.finish_s = start + (length if self.config.finish_at_round_end else held)

    def _run_goodput(self, p: JobProgress, by_node: tuple[int, ...], chosen: int | None, t: float) -> float:
        """A goodput job's round at one batch: samples × statistical efficiency at that batch, epoch by epoch of
        its goodput model (the noise scale changes at each), in samples at the initial batch size."""
        model = self.profiles.get(p.spec.model).goodput
        assert model is not None
        length, total, batch_range = self.config.round_seconds, p.total_samples, p.spec.adaptation.batch_range
        fraction = p.samples_done / total
        if chosen is None or model.throughput_on(chosen, by_node) <= 0:
            chosen = model.best_batch(sum(by_node), fraction, batch_range)
        if chosen is None:
            return t
        p.granted_batch_size = chosen
        if not p.history or p.history[-1][1] != chosen:
            p.history.append((p.epoch(), chosen))
        rate = model.throughput_on(chosen, by_node)
        while t < length and total - p.samples_done > DONE_TOLERANCE * total:
            fraction = p.samples_done / total
            epoch = model.epoch_at(fraction)
            boundary = min(total, model.epoch_ends[epoch] / model.total_progress * total)
            progress_rate = rate * model.efficiency(chosen, fraction)
            if progress_rate <= 0:
                break
            needed = max(0.0, boundary - p.samples_done) / progress_rate
            if t + needed <= length:
                p.samples_done, t = max(boundary, p.samples_done), t + needed
            else:
                p.samples_done += (length - t) * progress_rate
                t = length
        return t

    def _run_at_granted_batch_size(self, p: JobProgress, length: float, t: float, rate: float) -> float:
        """Shockwave's simulator: a round at the granted batch size; a due switch applies after it.

        The switch is noticed at the start of the round and applied at its end: GNS at most doubles,
        Accordion jumps to the scheduled size, and progress is rounded up to the next whole epoch.
        """
        granted = p.granted_batch_size = p.batch_size()
        scheduled = p.scheduled_batch_size()
        if not p.history or p.history[-1][1] != granted:
            p.history.append((p.epoch(), granted))
        left = p.total_samples - p.samples_done
        if rate > 0 and t < length:
            run = min(length - t, left / rate)
            p.samples_done = p.total_samples if run * rate >= left else p.samples_done + run * rate
            t += run
        if scheduled != granted and p.total_samples - p.samples_done > DONE_TOLERANCE * p.total_samples:
            gns_step = p.spec.adaptation.mode == AdaptationMode.GNS and scheduled > granted
            p.granted_batch_size = min(2 * granted, scheduled) if gns_step else scheduled
            whole = math.ceil(p.samples_done / p.samples_per_epoch - DONE_TOLERANCE) * p.samples_per_epoch
            p.samples_done = min(p.total_samples, whole)
        return t

    # -- the event loop -----------------------------------------------------------------------
    def run(self, progress: ProgressFn | None = None) -> SimulationResult:
        length = self.config.round_seconds
        events: list[tuple[float, int, int, int]] = []
        sequence = 0
        for index, p in enumerate(self.jobs):
            heapq.heappush(events, (p.spec.arrival_s, ARRIVAL, sequence, index))
            sequence += 1
        first_round = math.ceil(min(p.spec.arrival_s for p in self.jobs) / length) * length
        heapq.heappush(events, (first_round, ROUND, sequence, 0))
        sequence += 1
        active: list[JobProgress] = []
        previous: dict[str, JobAllocation] = {}
        policy_state: PolicyState = EMPTY_STATE
        rounds: list[RoundRecord] = []
        finished = seen = round_index = 0
        totals = (self.total_gpus, sum(n.cpus for n in self.nodes), sum(n.memory_gib for n in self.nodes))
        while events:
            now, kind, _, index = heapq.heappop(events)
            if now > self.config.max_simulated_s:
                raise RuntimeError(f"simulation passed {self.config.max_simulated_s} s with {len(active)} jobs left")
            if kind == ARRIVAL:
                active.append(self.jobs[index])
                seen += 1
                continue
            if active:
                decision = run_round(
                    self._snapshot(now, round_index, active, previous, policy_state, seen), self.plugins
                )
                rounds.append(self._record(now, len(active), decision, totals))
                by_id = {p.spec.id: p for p in active}
                keys = {job_id: (p.spec.model, p.batch_size()) for job_id, p in by_id.items()}
                for job_id, allocation in decision.allocations.items():
                    partner = next((w.shared_with for w in allocation.workers if w.shared_with is not None), None)
                    before = previous.get(job_id)
                    moved = self.config.move_costs_restore and before is not None and _moved(before, allocation)
                    lost = (
                        self.config.restore_overhead_s if before is None
                        else self.config.resize_overhead_s if before.gpus != allocation.gpus
                        or (self.config.profiling and _resized(before, allocation))
                        else self.config.restore_overhead_s if moved else 0.0
                    )
                    self._advance(by_id[job_id], allocation, now, lost, None if partner is None else keys[partner],
                                  decision.batch_sizes.get(job_id))
                    self._report(by_id[job_id], allocation, lost, partner is not None)
                previous = dict(decision.allocations)
                policy_state = decision.policy_state
                still = [p for p in active if p.finish_s is None]
                finished += len(active) - len(still)
                active = still
                round_index += 1
                if progress is not None:
                    progress(now + length, finished, len(self.jobs))
                if self.config.max_rounds is not None and round_index >= self.config.max_rounds:
                    break
            else:
                previous = {}
            if active or any(k == ARRIVAL for _, k, _, _ in events):
                next_round = now + length
                if not active:
                    next_round = max(
                        next_round,
                        math.ceil(min(t for t, k, _, _ in events if k == ARRIVAL) / length) * length,
                    )
                heapq.heappush(events, (next_round, ROUND, sequence, 0))
                sequence += 1
        outcomes = tuple(
            JobOutcome(
                p.spec.id,
                p.spec.model,
                p.spec.max_gpus,
                p.spec.arrival_s,
                p.first_start_s or 0.0,
                p.finish_s or 0.0,
                isolated_seconds(p, self.profiles),
                p.attained_gpu_seconds,
                job_scaling_curve(p, self.profiles),
            )
            for p in self.jobs
            if p.finish_s is not None or self.config.max_rounds is None
        )
        return SimulationResult(outcomes, tuple(rounds), self.total_gpus)

    @staticmethod
    def _record(now: float, active: int, decision: RoundDecision, totals: tuple[float, float, float]) -> RoundRecord:
        allocations = decision.allocations.values()
        gpus = sum(a.gpu_share for a in allocations)
        cpus = sum(a.cpus for a in allocations)
        memory = sum(a.memory_gib for a in allocations)
        return RoundRecord(
            now,
            active,
            len(decision.allocations),
            gpus / totals[0],
            cpus / totals[1],
            memory / totals[2],
            decision.timings.total_s,
            sum(1 for a in allocations if a.shared),
        )
