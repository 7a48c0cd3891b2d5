"""Progress reports on the wire, and the plausibility check the operator applies before using one.

A worker's report is only a claim. The operator checks it against what it can observe, the
allocation the job really holds and the job model (`stretto.operator.job_models`: the posterior
learned from the job's earlier reports, else its prior), before the claim feeds the regime model,
the finish-time prediction and the job model itself:
- samples per second above the top of the job model's 90 % credible interval on the allocation
  (times `THROUGHPUT_TOLERANCE`) is clipped. The bound is the model's, so a job no family describes
  is judged by its wide generic prior and then by what its own reports taught, and a family's job
  on faster hardware than the family's table is not clipped forever;
- recorded samples never go down (a job restarted from an older checkpoint catches up unrecorded)
  and never pass the job's total work;
- a batch size not in `spec.adaptation.batchSizes` is ignored (the last accepted one stays).
Every such correction is flagged in the reply and counted by the ledger. Pure functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from stretto.api.models import TrainingJob
from stretto.api.quantity import format_bytes
from stretto.core.job_model import JobThroughputModel
from stretto.core.snapshots import JobAllocation
from stretto.operator.job_models import JobModels, Measurement

# Measured throughput varies run to run (data loading, stragglers, a warm cache); a report up to
# 25 % above the model's upper bound is believed. Synergy's profiles are within ~10 % of measurement.
THROUGHPUT_TOLERANCE = 1.25


class ProgressReport(BaseModel):
    """The body of `POST /v1/progress`. Figures are for the whole job, whichever worker sends them."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    namespace: str = Field(min_length=1, max_length=63)
    job: str = Field(min_length=1, max_length=253)
    worker: int = Field(ge=0, le=1024, description="Index of the reporting worker.")
    epoch: float = Field(ge=0, description="Epochs done, fractional.")
    samples_done: float | None = Field(default=None, ge=0, description="Cumulative samples; default epoch × size.")
    samples_per_second: float = Field(ge=0)
    batch_size: int = Field(gt=0, description="Global batch size now.")
    timestamp: float = Field(ge=0, description="Unix seconds when the worker measured this.")


class _WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class AllocationView(_WireModel):
    workers: int = 0
    gpus: int = 0
    gpus_per_worker: int = 0
    cpu_per_worker: str | None = None
    memory_per_worker: str | None = None


class AcceptedReport(_WireModel):
    samples_per_second: float
    clipped: bool = False
    reason: str = ""


class ProgressResponse(_WireModel):
    """The 202 reply: what the job holds, whether to checkpoint, and what was recorded."""

    allocation: AllocationView
    checkpoint_requested: bool = False
    accepted: AcceptedReport


@dataclass(frozen=True)
class JobContext:
    """What the operator knows of a job when a report for it arrives."""

    model: JobThroughputModel               # the job model as the report finds it (posterior or prior)
    allocation: JobAllocation | None        # the bound, live workers; None when it holds none
    batch_sizes: tuple[int, ...]
    initial_batch_size: int
    samples_per_epoch: float
    total_samples: float
    gpus_per_worker: int = 1
    gpu_fraction: float = 1.0               # maxUtilization/100 for a job on a GPU share
    checkpoint_requested: bool = False
    uid: str = ""                           # the TrainingJob's: a re-created namesake starts from zero

    def allocation_view(self) -> AllocationView:
        allocation = self.allocation
        if allocation is None or not allocation.workers:
            return AllocationView(gpus_per_worker=self.gpus_per_worker)
        cpu = min(w.cpus for w in allocation.workers)
        memory = min(w.memory_gib for w in allocation.workers)
        return AllocationView(
            workers=len(allocation.workers), gpus=allocation.gpus,
            gpus_per_worker=min(len(w.gpu_indices) for w in allocation.workers),
            cpu_per_worker=_format_cpu(cpu) if cpu > 0 else None,
            memory_per_worker=format_bytes(round(memory * 2**30)) if memory > 0 else None,
        )


def job_context(job_body: dict[str, Any], *, models: JobModels, allocation: JobAllocation | None,
                checkpoint_requested: bool = False) -> JobContext:
    """The context of a TrainingJob; its job model is read as the round reads it (`JobModels`)."""
    job = TrainingJob.model_validate(job_body)
    spec = job.spec
    model = models.posterior(job, job_body)
    adaptation = spec.adaptation
    default_batch = model.prior.reference_batch_size
    return JobContext(
        model=model, allocation=allocation,
        batch_sizes=tuple(adaptation.batch_sizes) if adaptation else (default_batch,),
        initial_batch_size=adaptation.starting_batch_size if adaptation else default_batch,
        samples_per_epoch=float(spec.work.samples_per_epoch),
        total_samples=float(spec.work.epochs * spec.work.samples_per_epoch),
        gpus_per_worker=spec.gpus_per_worker,
        gpu_fraction=spec.gpu_share.max_utilization / 100 if spec.gpu_share else 1.0,
        checkpoint_requested=checkpoint_requested,
        uid=str((job_body.get("metadata") or {}).get("uid") or ""),
    )


def max_plausible_throughput(context: JobContext, batch_size: int, *,
                             tolerance: float = THROUGHPUT_TOLERANCE) -> float:
    """The most samples/s the job can believably reach on its allocation: the top of its job model's 90 %
    credible interval there (0 without GPUs)."""
    allocation = context.allocation
    if allocation is None or allocation.gpus <= 0:
        return 0.0
    cpu, memory = _per_gpu_share(allocation)
    top = context.model.estimate(gpus=allocation.gpus, batch_size=batch_size, cpu_per_gpu=cpu,
                                 memory_gib_per_gpu=memory).high
    return top * context.gpu_fraction * tolerance


def measurement_of(report: ProgressReport, accepted_samples_per_second: float,
                   context: JobContext) -> Measurement | None:
    """What the job model learns from an accepted report: the allocation the job really held (GPUs of its
    bound, live workers, CPU and memory per GPU from their requests), the report's batch size and the
    accepted rate. A clipped rate is learned as clipped: a job faster than its model believes lifts the
    bound report by report, while one wild claim cannot teach the model anything beyond it. None when there
    is nothing to learn: no GPUs held, no rate, or a batch size the spec does not allow (the report is wrong
    about something, so its rate is not trusted either).

    A job on a GPU share is throttled to at most maxUtilization of the GPU, and the model speaks of whole
    GPUs, so its rate is divided by that fraction (a lower bound when the node daemon gave it less)."""
    allocation = context.allocation
    if (allocation is None or allocation.gpus <= 0 or accepted_samples_per_second <= 0
            or report.batch_size not in context.batch_sizes):
        return None
    cpu, memory = _per_gpu_share(allocation)
    return Measurement(gpus=allocation.gpus, batch_size=report.batch_size,
                       samples_per_second=accepted_samples_per_second / context.gpu_fraction,
                       cpu_per_gpu=cpu, memory_gib_per_gpu=memory)


def _per_gpu_share(allocation: JobAllocation) -> tuple[float | None, float | None]:
    """CPUs and GiB per GPU the workers request; None where they request none (the reference share)."""
    return (allocation.cpu_per_gpu if allocation.cpus > 0 else None,
            allocation.memory_gib_per_gpu if allocation.memory_gib > 0 else None)


@dataclass(frozen=True)
class Verdict:
    """A report after the check: the figures to record and what was corrected."""

    samples_done: float
    epoch: float
    samples_per_second: float
    batch_size: int
    flags: tuple[str, ...] = ()

    @property
    def clipped(self) -> bool:
        return bool(self.flags)

    @property
    def reason(self) -> str:
        return "; ".join(self.flags)


def check_report(report: ProgressReport, context: JobContext, *, recorded_samples: float = 0.0,
                 recorded_epoch: float = 0.0, recorded_batch_size: int | None = None) -> Verdict:
    """Clip and flag what the job cannot have done; `recorded_*` is what the ledger holds."""
    flags: list[str] = []

    batch = report.batch_size
    if batch not in context.batch_sizes:
        batch = recorded_batch_size or context.initial_batch_size
        flags.append(f"batch size {report.batch_size} is not one of spec.adaptation.batchSizes "
                     f"{list(context.batch_sizes)}; kept {batch}")

    rate = report.samples_per_second
    ceiling = max_plausible_throughput(context, batch)
    if rate > ceiling:
        gpus = context.allocation.gpus if context.allocation else 0
        flags.append(f"{rate:.6g} samples/s is more than {gpus} GPU(s) at batch size {batch} allow "
                     f"({ceiling:.6g}); clipped")
        rate = ceiling

    claimed = report.samples_done if report.samples_done is not None else report.epoch * context.samples_per_epoch
    samples = claimed
    if samples > context.total_samples:
        flags.append(f"samples done {claimed:.6g} is more than the job's work ({context.total_samples:.6g}); clipped")
        samples = context.total_samples
    if samples < recorded_samples:
        flags.append(f"samples done {claimed:.6g} is below the recorded {recorded_samples:.6g}; kept")
        samples = recorded_samples

    epoch = min(report.epoch, context.total_samples / context.samples_per_epoch)
    if epoch < recorded_epoch:
        epoch = recorded_epoch  # follows samples done; its flag, if any, is above
    return Verdict(samples_done=samples, epoch=epoch, samples_per_second=rate, batch_size=batch, flags=tuple(flags))


def _format_cpu(cores: float) -> str:
    millis = math.ceil(cores * 1000 - 1e-6)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
