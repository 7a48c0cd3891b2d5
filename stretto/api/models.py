"""The TrainingJob API (group stretto.io, version v1alpha1) as pydantic models.

These models are the single source of the API: the CRD's OpenAPI schema is generated from them
(`stretto.api.crd`), the checked-in CRD under manifests/ must match, and the operator parses the
objects it watches with them. Rules that span fields are CEL `x-kubernetes-validations`, so the API
server itself refuses an invalid TrainingJob with a message that names the field; `validate_rules`
applies the same rules in Python for code that builds specs without an API server.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from stretto.api.quantity import MEMORY_PATTERN, parse_bytes

# No GPU on sale has more memory than this (AMD MI355X / NVIDIA B300: 288 GB); a larger cap is a typo.
MAX_GPU_MEMORY = "288Gi"
ADAPTATION_MODES = ("none", "gns", "accordion")
PHASES = ("Pending", "Running", "Scaling", "Suspended", "Succeeded", "Failed")


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class WorkerRange(ApiModel):
    """Elastic range of worker pods; min == max makes a rigid job."""

    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "self.min <= self.max", "message": "workers.min must not exceed workers.max",
         "reason": "FieldValueInvalid"},
    ))

    min: int = Field(ge=1, le=1024, description="Fewest workers the job can run with.")
    max: int = Field(ge=1, le=1024, description="Most workers the job can use.")

    @model_validator(mode="after")
    def _min_le_max(self) -> WorkerRange:
        if self.min > self.max:
            raise ValueError("workers.min must not exceed workers.max")
        return self


class GpuShare(ApiModel):
    """A fraction of one GPU: a memory cap and a guaranteed and maximal share of its time."""

    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "self.minUtilization <= self.maxUtilization",
         "message": "gpuShare.minUtilization must not exceed gpuShare.maxUtilization",
         "reason": "FieldValueInvalid"},
        {"rule": f"quantity(self.memory).compareTo(quantity('{MAX_GPU_MEMORY}')) <= 0",
         "message": f"gpuShare.memory is larger than any GPU ({MAX_GPU_MEMORY})",
         "fieldPath": ".memory", "reason": "FieldValueInvalid"},
        {"rule": "quantity(self.memory).isGreaterThan(quantity('0'))",
         "message": "gpuShare.memory must be positive", "fieldPath": ".memory", "reason": "FieldValueInvalid"},
    ))

    memory: str = Field(pattern=MEMORY_PATTERN, max_length=32, description="GPU memory cap, e.g. 10Gi.")
    min_utilization: int = Field(default=0, ge=0, le=100, description="Percent of the GPU guaranteed.")
    max_utilization: int = Field(default=100, ge=1, le=100, description="Percent of the GPU at most.")

    @model_validator(mode="after")
    def _consistent(self) -> GpuShare:
        if self.min_utilization > self.max_utilization:
            raise ValueError("gpuShare.minUtilization must not exceed gpuShare.maxUtilization")
        if not 0 < parse_bytes(self.memory) <= parse_bytes(MAX_GPU_MEMORY):
            raise ValueError(f"gpuShare.memory must be positive and at most {MAX_GPU_MEMORY}")
        return self

    @property
    def memory_bytes(self) -> int:
        return parse_bytes(self.memory)


class Work(ApiModel):
    epochs: int = Field(ge=1, le=1_000_000, description="Epochs to train.")
    samples_per_epoch: int = Field(ge=1, description="Samples in one epoch of the dataset.")


class Adaptation(ApiModel):
    """How the job changes its batch size while it trains (GNS doubling, Accordion, or not)."""

    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "!has(self.initialBatchSize) || self.initialBatchSize in self.batchSizes",
         "message": "adaptation.initialBatchSize must be one of adaptation.batchSizes",
         "fieldPath": ".initialBatchSize", "reason": "FieldValueInvalid"},
        {"rule": "self.batchSizes.all(b, b > 0)", "message": "adaptation.batchSizes must be positive",
         "fieldPath": ".batchSizes", "reason": "FieldValueInvalid"},
    ))

    mode: Literal["none", "gns", "accordion"] = Field(
        default="none", description="Batch-size adaptation: none, gns (doubling) or accordion.")
    batch_sizes: list[int] = Field(min_length=1, max_length=32, description="Batch sizes the job may use.")
    initial_batch_size: int | None = Field(default=None, ge=1, description="Defaults to the smallest.")

    @model_validator(mode="after")
    def _initial_in_sizes(self) -> Adaptation:
        if any(b <= 0 for b in self.batch_sizes):
            raise ValueError("adaptation.batchSizes must be positive")
        if self.initial_batch_size is not None and self.initial_batch_size not in self.batch_sizes:
            raise ValueError("adaptation.initialBatchSize must be one of adaptation.batchSizes")
        return self

    @property
    def starting_batch_size(self) -> int:
        return self.initial_batch_size or min(self.batch_sizes)


class Profile(ApiModel):
    """Optional resource sensitivity (Synergy); without it Stretto uses its built-in model profiles."""

    model: str | None = Field(default=None, max_length=63, description="Model name for built-in profiles.")
    ideal_cpus_per_gpu: float | None = Field(default=None, gt=0, le=256)
    ideal_memory_per_gpu: str | None = Field(default=None, pattern=MEMORY_PATTERN, max_length=32)
    speedup: float | None = Field(default=None, ge=1, le=100,
                                  description="Throughput at the ideal CPU and memory over proportional.")


class Checkpoint(ApiModel):
    grace_period_seconds: int = Field(default=30, ge=0, le=3600,
                                      description="Time a shrinking worker gets to checkpoint before SIGKILL.")


class ContainerSketch(ApiModel):
    """The fields of a container the API server checks; the rest is kept as the user wrote it."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    name: str = Field(min_length=1, max_length=63)
    image: str = Field(min_length=1)


class PodSpecSketch(ApiModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    containers: list[ContainerSketch] = Field(min_length=1, max_length=16)


class PodTemplate(ApiModel):
    """A PodTemplateSpec; Stretto adds GPU, CPU, memory, env, the shim and the scheduler name."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})

    metadata: dict[str, Any] | None = Field(default=None, json_schema_extra={
        "x-kubernetes-preserve-unknown-fields": True})
    spec: PodSpecSketch


class TrainingJobSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "!has(self.gpuShare) || self.gpusPerWorker == 1",
         "message": "gpusPerWorker must be 1 when gpuShare asks for a fraction of one GPU",
         "fieldPath": ".gpusPerWorker", "reason": "FieldValueInvalid"},
    ))

    tenant: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                               description="Fairness is across tenants, then jobs. Default: the namespace.")
    weight: float = Field(default=1.0, gt=0, le=1000, description="Share weight (budget in the market).")
    workers: WorkerRange
    gpus_per_worker: int = Field(default=1, ge=1, le=16, description="Whole GPUs per worker.")
    gpu_share: GpuShare | None = Field(default=None, description="A fraction of one GPU per worker.")
    work: Work
    adaptation: Adaptation | None = None
    profile: Profile | None = None
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    template: PodTemplate

    @model_validator(mode="after")
    def _share_is_one_gpu(self) -> TrainingJobSpec:
        if self.gpu_share is not None and self.gpus_per_worker != 1:
            raise ValueError("gpusPerWorker must be 1 when gpuShare asks for a fraction of one GPU")
        return self


class Condition(ApiModel):
    model_config = ConfigDict(extra="allow")

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str | None = None
    message: str | None = None
    last_transition_time: str | None = None


class Allocation(ApiModel):
    """What the job holds (gpus, workers, nodes) and what the latest round planned for it."""

    gpus: int = 0
    workers: int = 0
    planned_gpus: int | None = None
    planned_workers: int | None = None
    cpu_per_worker: str | None = None
    memory_per_worker: str | None = None
    nodes: list[str] = Field(default_factory=list)


class Progress(ApiModel):
    epoch: float = 0
    percent: float = 0
    samples_done: float = 0
    batch_size: int | None = None
    samples_per_second: float | None = None
    batch_size_history: list[list[int]] = Field(
        default_factory=list, description="[first epoch, batch size] pairs, the current one last")


class Accounting(ApiModel):
    """Service the job has received: what fairness policies (LAS, Themis, ...) base decisions on."""

    attained_gpu_seconds: float = 0
    run_seconds: float = 0
    first_start: str | None = None
    last_run_end: str | None = None
    running_gpus: int = 0
    updated_at: str | None = None


class RegimeForecast(ApiModel):
    batch_size: int
    remaining_epochs: float


class Prediction(ApiModel):
    finish_time: str | None = None
    rho: float | None = None
    remaining_seconds: float | None = None
    regimes: list[RegimeForecast] = Field(
        default_factory=list, description="expected epochs still to run at each batch size (regime posterior)")


class TrainingJobStatus(ApiModel):
    model_config = ConfigDict(extra="allow")

    phase: Literal["Pending", "Running", "Scaling", "Suspended", "Succeeded", "Failed"] = "Pending"
    workers: int = 0
    ready_workers: int = 0
    allocation: Allocation | None = None
    progress: Progress | None = None
    accounting: Accounting | None = None
    prediction: Prediction | None = None
    message: str | None = None
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class TrainingJob(ApiModel):
    model_config = ConfigDict(extra="ignore")

    api_version: str = "stretto.io/v1alpha1"
    kind: str = "TrainingJob"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def tenant(self) -> str:
        return self.spec.tenant or self.namespace
