"""The TrainingJob API (group stretto.io, version v1alpha1) as pydantic models.

These models are the single source of the API: the CRD's OpenAPI schema is generated from them
(`stretto.api.crd`), the checked-in CRD under manifests/ must match, and the operator parses the
objects it watches with them. Rules that span fields are CEL `x-kubernetes-validations`, so the API
server itself refuses an invalid TrainingJob with a message that names the field; the models'
validators apply the same rules in Python, for code that builds specs without an API server.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from stretto import contracts
from stretto.api.quantity import MEMORY_PATTERN, parse_bytes

# No GPU on sale has more memory than this (AMD MI355X / NVIDIA B300: 288 GB); a larger cap is a typo.
MAX_GPU_MEMORY = "288Gi"
ADAPTATION_MODES = ("none", "gns", "accordion")
PHASES = ("Pending", "Running", "Scaling", "Suspended", "Succeeded", "Failed")
# Marks where the CRD generator embeds a Kubernetes schema (stretto.api.pod_template_schema) under the model's own.
EMBED_MARKER = "x-stretto-embed"
DNS_LABEL_MAX = 63
# Label and Service names are DNS-1035 labels: lower-case letters, digits and '-', starting with a letter.
DNS_1035_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MAX_WORKERS = 1024
# Every name Stretto derives from the job's: worker pods (whose hostname is their name, a DNS label),
# the headless Service (a DNS-1035 label), the progress Secret and the stretto.io/job label value.
JOB_NAME_MAX_LENGTH = DNS_LABEL_MAX - max(len(contracts.worker_pod_name("", MAX_WORKERS - 1)),
                                          len(contracts.headless_service_name("")))
JOB_NAME_RULES: tuple[dict[str, str], ...] = (
    {"rule": f"self.metadata.name.size() <= {JOB_NAME_MAX_LENGTH}",
     "message": f"metadata.name may have at most {JOB_NAME_MAX_LENGTH} characters: worker "
                f"{contracts.worker_pod_name('<name>', MAX_WORKERS - 1)} is also its hostname, a DNS label of at "
                f"most {DNS_LABEL_MAX}",
     "fieldPath": ".metadata.name", "reason": "FieldValueInvalid"},
    {"rule": f"self.metadata.name.matches('{DNS_1035_LABEL}')",
     "message": "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
                f"letter): it names the job's headless Service {contracts.headless_service_name('<name>')}",
     "fieldPath": ".metadata.name", "reason": "FieldValueInvalid"},
)


def _rules(*rules: dict[str, str]) -> dict[str, Any]:
    return {"x-kubernetes-validations": list(rules)}


def _defaulted_by_the_models(schema: dict[str, Any]) -> None:
    """Keep the default out of the CRD: the API server applies schema defaults before CEL rules, which must
    see whether the user set the field; the models apply it when the operator parses the job."""
    schema.pop("default", None)


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class WorkerRange(ApiModel):
    """Elastic range of worker pods; min == max makes a rigid job."""

    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "self.min <= self.max", "message": "workers.min must not exceed workers.max",
         "reason": "FieldValueInvalid"},
    ))

    min: int = Field(ge=1, le=MAX_WORKERS, description="Fewest workers the job can run with.")
    max: int = Field(ge=1, le=MAX_WORKERS, description="Most workers the job can use.")

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
    batch_sizes: list[int] = Field(min_length=1, max_length=32, description="Batch sizes the job may use.",
                                   json_schema_extra={"x-kubernetes-list-type": "set"})  # duplicates refused
    initial_batch_size: int | None = Field(default=None, ge=1, description="Defaults to the smallest.")

    @model_validator(mode="after")
    def _initial_in_sizes(self) -> Adaptation:
        if any(b <= 0 for b in self.batch_sizes):
            raise ValueError("adaptation.batchSizes must be positive")
        if len(set(self.batch_sizes)) != len(self.batch_sizes):
            raise ValueError("adaptation.batchSizes must not repeat a size")
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


# Pod fields the pod builder sets on every worker; a template that sets them is refused, not overwritten.
STRETTO_SETS_POD_FIELDS: dict[str, str] = {
    "nodeName": "the round's packer picks each worker's node and the scheduler extender binds it",
    "schedulerName": f"every worker is placed by {contracts.SCHEDULER_NAME}",
    "hostname": "each worker's hostname is its pod name, for the rendezvous",
    "hostnameOverride": "each worker's hostname is its pod name, for the rendezvous",
    "subdomain": "workers get the job's headless Service as their subdomain",
    "terminationGracePeriodSeconds": "it comes from spec.checkpoint.gracePeriodSeconds",
}
STRETTO_RESOURCES = f"{contracts.GPU_RESOURCE} and {contracts.GROUP}/* resources"
RESERVED_ENV_PREFIXES = ("PET_", "STRETTO_")
RESERVED_ENV_NAMES = (contracts.ENV_LD_PRELOAD,)
RESERVED_VOLUME_PREFIX = "stretto-"
RESERVED_LABELS = (contracts.LABEL_MANAGED_BY,)


def _owned_resource(key: str) -> bool:
    return key == contracts.GPU_RESOURCE or key.startswith(f"{contracts.GROUP}/")


def _reserved_env(name: str) -> bool:
    return name.startswith(RESERVED_ENV_PREFIXES) or name in RESERVED_ENV_NAMES


_OWNED_RESOURCE_CEL = f"k != '{contracts.GPU_RESOURCE}' && !k.startsWith('{contracts.GROUP}/')"
_RESERVED_ENV_CEL = " || ".join([f"e.name.startsWith('{p}')" for p in RESERVED_ENV_PREFIXES]
                                + [f"e.name == '{n}'" for n in RESERVED_ENV_NAMES])
_STRETTO_KEY_CEL = f"!k.startsWith('{contracts.GROUP}/')"


class ResourcesRules(ApiModel):
    """A container's resources: the GPU resources are Stretto's."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_rules(*(
        {"rule": f"!has(self.{part}) || self.{part}.all(k, {_OWNED_RESOURCE_CEL})",
         "message": f"Stretto sets the {STRETTO_RESOURCES} from spec.gpusPerWorker or spec.gpuShare: "
                    f"{part} must not name them",
         "fieldPath": f".{part}", "reason": "FieldValueForbidden"} for part in ("limits", "requests"))))

    limits: dict[str, Any] | None = Field(default=None, json_schema_extra={"maxProperties": 32})
    requests: dict[str, Any] | None = Field(default=None, json_schema_extra={"maxProperties": 32})

    @model_validator(mode="after")
    def _no_owned_resources(self) -> ResourcesRules:
        for part in ("limits", "requests"):
            owned = [k for k in getattr(self, part) or {} if _owned_resource(k)]
            if owned:
                raise ValueError(f"Stretto sets the {STRETTO_RESOURCES} from spec.gpusPerWorker or "
                                 f"spec.gpuShare: {part} must not name them ({', '.join(owned)})")
        return self


class EnvVarRules(ApiModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=256)


class ContainerRules(ApiModel):
    """What Stretto checks in a container beyond core/v1's schema (which the CRD embeds)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=DNS_LABEL_MAX, pattern=DNS_1123_LABEL)
    image: str = Field(min_length=1, max_length=4096)
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    env: list[EnvVarRules] | None = Field(default=None, max_length=256)
    resources: ResourcesRules | None = None


class InitContainerRules(ContainerRules):
    restart_policy: Literal["Always"] | None = Field(
        default=None, description="Always makes it a sidecar that runs beside the workers' containers.")


class VolumeRules(ApiModel):
    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=DNS_LABEL_MAX)


class PodSpecRules(ApiModel):
    """What Stretto checks in the pod spec beyond core/v1's schema: the fields its pod builder sets."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_rules(
        *({"rule": f"!has(self.{field})", "message": f"Stretto sets {field}: {why}",
           "fieldPath": f".{field}", "reason": "FieldValueForbidden"}
          for field, why in STRETTO_SETS_POD_FIELDS.items()),
        {"rule": "self.containers.size() == 0 || !has(self.containers[0].env) || "
                 f"!self.containers[0].env.exists(e, {_RESERVED_ENV_CEL})",
         "message": "the first container (the trainer) must not set PET_* or STRETTO_* variables or "
                    "LD_PRELOAD: Stretto sets them (torchrun's rendezvous, the progress channel, the GPU-share shim)",
         "fieldPath": ".containers", "reason": "FieldValueForbidden"},
        {"rule": "self.containers.size() == 0 || !has(self.containers[0].resources) || "
                 "!has(self.containers[0].resources.requests) || "
                 "!self.containers[0].resources.requests.exists(k, k == 'cpu' || k == 'memory')",
         "message": "the first container (the trainer) must not request cpu or memory: Stretto sets them every "
                    "round (spec.profile says what the job is sensitive to)",
         "fieldPath": ".containers", "reason": "FieldValueForbidden"},
        {"rule": f"!has(self.volumes) || self.volumes.all(v, !v.name.startsWith('{RESERVED_VOLUME_PREFIX}'))",
         "message": f"Stretto sets the volumes named {RESERVED_VOLUME_PREFIX}* (the GPU-share shim's)",
         "fieldPath": ".volumes", "reason": "FieldValueForbidden"},
    ))

    containers: list[ContainerRules] = Field(min_length=1, max_length=16)
    init_containers: list[InitContainerRules] | None = Field(default=None, max_length=16)
    volumes: list[VolumeRules] | None = Field(default=None, max_length=256)
    restart_policy: Literal["OnFailure", "Never", "Always"] | None = None

    @model_validator(mode="after")
    def _nothing_stretto_sets(self) -> PodSpecRules:
        extra = self.model_extra or {}
        for field, why in STRETTO_SETS_POD_FIELDS.items():
            if field in extra:
                raise ValueError(f"Stretto sets {field}: {why}")
        trainer = self.containers[0]
        if any(_reserved_env(e.name) for e in trainer.env or []):
            raise ValueError("the first container (the trainer) must not set PET_* or STRETTO_* variables "
                             "or LD_PRELOAD: Stretto sets them")
        requests = (trainer.resources.requests if trainer.resources else None) or {}
        if {"cpu", "memory"} & set(requests):
            raise ValueError("the first container (the trainer) must not request cpu or memory: Stretto sets them")
        if any(v.name.startswith(RESERVED_VOLUME_PREFIX) for v in self.volumes or []):
            raise ValueError(f"Stretto sets the volumes named {RESERVED_VOLUME_PREFIX}*")
        return self


class TemplateMetadata(ApiModel):
    """Labels and annotations for every worker; the stretto.io/ keys are Stretto's contract with its parts."""

    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": f"!has(self.labels) || self.labels.all(k, {_STRETTO_KEY_CEL} && "
                 + " && ".join(f"k != '{label}'" for label in RESERVED_LABELS) + ")",
         "message": f"Stretto sets the labels under {contracts.GROUP}/ and {', '.join(RESERVED_LABELS)}",
         "fieldPath": ".labels", "reason": "FieldValueForbidden"},
        {"rule": f"!has(self.annotations) || self.annotations.all(k, {_STRETTO_KEY_CEL})",
         "message": f"Stretto sets the annotations under {contracts.GROUP}/ (plans, GPU ids, shares)",
         "fieldPath": ".annotations", "reason": "FieldValueForbidden"},
    ))

    labels: dict[str, str] | None = Field(default=None, json_schema_extra={"maxProperties": 64})
    annotations: dict[str, str] | None = Field(default=None, json_schema_extra={"maxProperties": 64})

    @model_validator(mode="after")
    def _no_stretto_keys(self) -> TemplateMetadata:
        prefix = f"{contracts.GROUP}/"
        if any(k.startswith(prefix) or k in RESERVED_LABELS for k in self.labels or {}):
            raise ValueError(f"Stretto sets the labels under {prefix} and {', '.join(RESERVED_LABELS)}")
        if any(k.startswith(prefix) for k in self.annotations or {}):
            raise ValueError(f"Stretto sets the annotations under {prefix}")
        return self


class PodTemplate(ApiModel):
    """The worker's core/v1 PodTemplateSpec; Stretto adds GPU, CPU, memory, env, the shim and the scheduler.

    The CRD embeds core/v1's own schema here (`pod_template_schema`, generated from the Kubernetes
    OpenAPI), overlaid with what these models add: the fields Stretto sets are refused.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={EMBED_MARKER: "core/v1.PodTemplateSpec"})

    metadata: TemplateMetadata | None = None
    spec: PodSpecRules


class TrainingJobSpec(ApiModel):
    model_config = ConfigDict(json_schema_extra=_rules(
        {"rule": "!has(self.gpuShare) || !has(self.gpusPerWorker)",
         "message": "gpusPerWorker and gpuShare exclude each other: gpuShare asks for a fraction of one GPU",
         "fieldPath": ".gpusPerWorker", "reason": "FieldValueForbidden"},
    ))

    tenant: str | None = Field(default=None, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
                               description="Fairness is across tenants, then jobs. Default: the namespace.")
    weight: float = Field(default=1.0, gt=0, le=1000, description="Share weight (budget in the market).")
    workers: WorkerRange
    gpus_per_worker: int = Field(default=1, ge=1, le=16, json_schema_extra=_defaulted_by_the_models,
                                 description="Whole GPUs per worker (default 1); not with gpuShare.")
    gpu_share: GpuShare | None = Field(default=None, description="A fraction of one GPU per worker.")
    work: Work
    adaptation: Adaptation | None = None
    profile: Profile | None = None
    checkpoint: Checkpoint = Field(default_factory=Checkpoint)
    template: PodTemplate

    @model_validator(mode="after")
    def _share_or_whole_gpus(self) -> TrainingJobSpec:
        if self.gpu_share is not None and "gpus_per_worker" in self.model_fields_set:
            raise ValueError("gpusPerWorker and gpuShare exclude each other: gpuShare asks for a fraction of one GPU")
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


# Bounds of `status.jobModel`, as stretto.core.job_model writes it (a test keeps them equal to its own).
JOB_MODEL_FEATURES = 5          # level, GPU exponent, batch exponent, CPU and memory elasticities
JOB_MODEL_MAX_TABLE = 256       # prior throughput entries
JOB_MODEL_MAX_GRID = 64         # CPU or memory grid points
JOB_MODEL_MAX_WINDOW = 256      # reports kept verbatim
_Coefficients = Annotated[list[float], Field(min_length=JOB_MODEL_FEATURES, max_length=JOB_MODEL_FEATURES)]


class JobModelGrid(ApiModel):
    """The prior's CPU × memory grid: relative throughput per (CPUs, GiB) per GPU."""

    cpu_per_gpu: list[float] = Field(min_length=1, max_length=JOB_MODEL_MAX_GRID)
    memory_gib_per_gpu: list[float] = Field(min_length=1, max_length=JOB_MODEL_MAX_GRID)
    relative_throughput: list[Annotated[list[float], Field(max_length=JOB_MODEL_MAX_GRID)]] = Field(
        max_length=JOB_MODEL_MAX_GRID)
    ideal_cpu_per_gpu: float
    ideal_memory_gib_per_gpu: float
    ideal_speedup: float


class JobModelPrior(ApiModel):
    """The fixed curve the job's correction is learned against, and the prior on that correction."""

    model: str = Field(min_length=1, max_length=63)
    throughput: list[Annotated[list[float], Field(min_length=3, max_length=3)]] = Field(
        max_length=JOB_MODEL_MAX_TABLE, description="[batch size, GPUs, samples per second] of the prior curve")
    default_batch_size: int = Field(ge=1)
    samples_per_epoch: float | None = None
    scale_with_gpus: bool
    source: str = Field(max_length=1024)
    sensitivity: JobModelGrid | None = None
    mean: _Coefficients
    sd: _Coefficients
    cpu_saturation: float
    memory_saturation: float
    reference_cpu_per_gpu: float
    reference_memory_gib_per_gpu: float
    noise_scale: float
    noise_dof: float
    declared: bool


class JobModelFolded(ApiModel):
    """Reports older than the window, as weighted least-squares sums."""

    count: int = Field(ge=0)
    gram: list[_Coefficients] = Field(min_length=JOB_MODEL_FEATURES, max_length=JOB_MODEL_FEATURES)
    shift: _Coefficients
    squares: float = Field(ge=0)


class JobModel(ApiModel):
    """The job's throughput posterior (`stretto.core.job_model`), learned from its own progress reports."""

    version: int = Field(ge=1)
    prior: JobModelPrior
    window: int = Field(ge=1, le=JOB_MODEL_MAX_WINDOW)
    reports: list[Annotated[list[float], Field(min_length=5, max_length=5)]] = Field(
        max_length=JOB_MODEL_MAX_WINDOW,
        description="[GPUs, batch size, CPUs per GPU, GiB per GPU, samples per second], the newest last")
    folded: JobModelFolded


class JobModelSummary(ApiModel):
    """What `kubectl get tj` shows of the job model: whose curve it is and how sure it is."""

    name: str = Field(max_length=63, description="The built-in family the prior came from, or 'learned'.")
    reports: int = Field(default=0, ge=0, description="Reports learned from.")
    samples_per_second: float | None = Field(default=None, description="Learned rate at the last report's allocation.")
    uncertainty: float | None = Field(
        default=None, ge=0, description="Half-width of the 90 % credible interval there, percent of the rate.")


class TrainingJobStatus(ApiModel):
    model_config = ConfigDict(extra="allow")

    phase: Literal["Pending", "Running", "Scaling", "Suspended", "Succeeded", "Failed"] = "Pending"
    workers: int = 0
    ready_workers: int = 0
    allocation: Allocation | None = None
    progress: Progress | None = None
    accounting: Accounting | None = None
    prediction: Prediction | None = None
    job_model: JobModel | None = None
    job_model_summary: JobModelSummary | None = None
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

    @model_validator(mode="after")
    def _name_fits(self) -> TrainingJob:
        name = self.metadata.get("name")
        if name is not None and not (len(name) <= JOB_NAME_MAX_LENGTH and re.match(DNS_1035_LABEL, name)):
            raise ValueError(f"metadata.name must be a DNS-1035 label of at most {JOB_NAME_MAX_LENGTH} characters")
        return self

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", "default"))

    @property
    def tenant(self) -> str:
        return self.spec.tenant or self.namespace
