"""The per-job throughput posterior: what this job's own reports say about its speed.

A job's samples per second at an allocation x = (GPUs g, batch size b, CPUs c and memory m per
GPU) is modelled on the log scale as a prior curve plus a small learned correction:

    log y = log prior(x) + φ · z(x) + ε
    z(x)  = (1, log g, log(b / b₀), log(min(c, c_sat) / min(c₀, c_sat)), log(min(m, m_sat) / min(m₀, m_sat)))

`prior(x)` is a fixed curve: a built-in family's table and CPU × memory grid when the job names
one (so the prior reproduces that table exactly), otherwise a generic data-parallel curve. b₀, c₀
and m₀ are the batch size and per-GPU share at which that table holds (the family's default batch
size, the built-ins' 3 CPUs and 62.5 GiB per GPU), so z = 0 and the table is untouched at its own
points. Why this form:

- Log-throughput makes every effect a ratio, which is how scaling is talked about (a GPU exponent,
  a CPU elasticity, "2x faster") and keeps predictions positive.
- The correction is linear in five coefficients: a level (the prior is off by a constant factor,
  the usual case on other hardware), a GPU-scaling exponent, a batch-size exponent and the CPU and
  memory elasticities up to a saturation point (Synergy's curves rise roughly in proportion to
  CPUs until the GPU is the bottleneck, then stay flat). Five numbers are identifiable from the
  few allocations a job really runs at; coefficients the reports do not vary stay at their prior.
- φ has a Gaussian prior N(mean, diag(sd²)); the noise ε is Student-t with a scale that is
  itself estimated, from an inverse-χ² prior worth a few reports. Symphony: telemetry is off by
  up to 40 % and sometimes wildly, and a Gaussian fit would follow one x5 report; the t model's
  EM (iteratively reweighted least squares) gives such a report a weight near zero. ν = 2: in
  the scale's update each far outlier still adds about (ν + 1)σ², so with a fifth of reports bad
  a larger ν inflates the scale until the outliers earn weight again; ν = 2 keeps that small
  and costs little on clean data. Starting the iteration from the prior's shape with a median
  level and a MAD scale keeps it on the majority's mode.

The prior for a job:

- A family from the profile book: its table and grid as the curve; the level has sd 0.3 (a
  family is somebody else's hardware), the exponents and elasticities sd 0.1-0.25 around zero.
- No family: `GENERIC_SAMPLES_PER_SECOND` at the job's batch size on one GPU, GPUs scaling with
  exponent `GENERIC_GPU_EXPONENT`, no CPU or memory effect; the level has sd 1.5 (a factor 4.5 at
  one sd: samples per second differ by orders of magnitude between models) and the other
  coefficients are wide too. The first report settles the level.
- What the user declares (idealCpusPerGpu c*, idealMemoryPerGpu m*, speedup s) is about this
  job, so it replaces the family's CPU × memory grid (the family's table stays). c* and m* become
  the saturation points; a value not declared comes from the family's grid summary, else the
  generic saturation point (and s = 1). The speedup becomes the prior mean α of the elasticities,
  one value shared by the axes whose ideal is known (declared or the family's; the CPU axis alone
  when neither is, as a speedup is most often an input pipeline's), chosen so that the prior
  predicts exactly s times the reference rate at the ideal point:
  α = log s / Σ log⁺(ideal / reference) over those axes. With a speedup known, the elasticities'
  sd becomes 0.2: a declared number is informative, not exact. A speedup with no such axis
  above the reference cannot be placed and is ignored. An axis the speedup does not shape (its
  ideal at or below the reference share, no gain, or no ideal known, which then is the reference
  share) gets elasticity 1 below its ideal, sd 0.2: a declared ideal means "below this the job
  slows" (Synergy's ideal demand is the smallest allocation that reaches the best throughput), and
  a flat axis would show every allocation below it as free.

The posterior is a Gaussian over φ (the EM fixed point and its precision), so the point estimate
is exp of the posterior mean of log y (the posterior median of y), with a credible interval from
the posterior sd of log y. It is immutable: `observe` returns a new posterior. Its persisted form
is bounded: the last `window` reports are kept and refitted; an older report is folded, with the
weight it had when it left the window, into Gaussian sufficient statistics (a 5 x 5 matrix, a
vector, a sum of squares and a count), which is exact for the coefficients given those weights.
`as_profile` turns the posterior median into a `ModelProfile` so policies and packers read it
unchanged.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from stretto.core.optimistic_profiling import DEFAULT_CPU_AXIS, DEFAULT_MEMORY_AXIS, NEAR_BEST
from stretto.core.profiles import ModelProfile, ProfileBook, ResourceSensitivity

STATUS_VERSION = 1
FEATURES = ("level", "log_gpus", "log_batch", "cpu", "memory")
N_FEATURES = len(FEATURES)

REFERENCE_CPU_PER_GPU = 3.0  # the share the built-in tables were measured at (stretto/profiles/README.md)
REFERENCE_MEMORY_GIB_PER_GPU = 62.5

GENERIC_SAMPLES_PER_SECOND = 500.0
GENERIC_BATCH_SIZE = 256
GENERIC_GPU_EXPONENT = 0.9
GENERIC_CPU_SATURATION = 12.0  # CPUs per GPU past which no model in Synergy's study gains
GENERIC_MEMORY_SATURATION = 250.0
FAMILY_PRIOR_SD = (0.3, 0.1, 0.25, 0.2, 0.2)
GENERIC_PRIOR_SD = (1.5, 0.15, 0.3, 0.4, 0.3)
DECLARED_ELASTICITY_SD = 0.2
BELOW_IDEAL_ELASTICITY = 1.0  # a declared job below an ideal the speedup does not shape: proportionally slower

NOISE_SCALE = 0.1  # prior noise sd of log-throughput: a 10 % report-to-report spread
NOISE_FLOOR = 0.02  # no telemetry is steadier than 2 %, however many reports agree
NOISE_DOF = 2.0
NOISE_PSEUDO_COUNT = 4.0  # the noise prior is worth this many reports
WINDOW = 32
MAX_WINDOW = 256
MAX_TABLE_ENTRIES = 256
MAX_GRID_POINTS = 64
CREDIBLE_Z = 1.6448536269514722  # two-sided 90 %
_MAX_ITERATIONS = 200
_TOLERANCE = 1e-10


@dataclass(frozen=True, slots=True)
class ThroughputPrior:
    """The fixed curve the correction is learned against, and the prior on the correction."""

    curve: ModelProfile  # its table holds at (reference_batch_size, reference CPU and memory per GPU)
    mean: tuple[float, ...]
    sd: tuple[float, ...]
    cpu_saturation: float
    memory_saturation: float
    reference_cpu_per_gpu: float = REFERENCE_CPU_PER_GPU
    reference_memory_gib_per_gpu: float = REFERENCE_MEMORY_GIB_PER_GPU
    noise_scale: float = NOISE_SCALE
    noise_dof: float = NOISE_DOF
    declared: bool = False  # the CPU/memory part comes from the user's spec.profile

    def __post_init__(self) -> None:
        if len(self.mean) != N_FEATURES or len(self.sd) != N_FEATURES:
            raise ValueError(f"a prior needs {N_FEATURES} means and sds ({', '.join(FEATURES)})")
        if not all(math.isfinite(v) for v in self.mean) or not all(math.isfinite(v) and v > 0 for v in self.sd):
            raise ValueError("prior means must be finite and prior sds positive")
        for name in ("cpu_saturation", "memory_saturation", "reference_cpu_per_gpu",
                     "reference_memory_gib_per_gpu", "noise_scale", "noise_dof"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"prior {name} must be a positive number, got {value!r}")

    @property
    def reference_batch_size(self) -> int:
        return self.curve.default_batch_size


def job_prior(
    *,
    book: ProfileBook | None = None,
    model: str | None = None,
    batch_size: int | None = None,
    ideal_cpus_per_gpu: float | None = None,
    ideal_memory_gib_per_gpu: float | None = None,
    speedup: float | None = None,
    samples_per_epoch: int | None = None,
    reference_cpu_per_gpu: float = REFERENCE_CPU_PER_GPU,
    reference_memory_gib_per_gpu: float = REFERENCE_MEMORY_GIB_PER_GPU,
) -> ThroughputPrior:
    """The prior for a job from its spec.profile (memory already in GiB) and the profile book.

    `batch_size` is the job's starting batch size; it is the generic curve's reference (a family's
    reference is its own default batch size).
    """
    declarations = {"ideal_cpus_per_gpu": ideal_cpus_per_gpu, "ideal_memory_gib_per_gpu": ideal_memory_gib_per_gpu,
                    "speedup": speedup}
    for name, value in declarations.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"a declared {name} must be a positive number, got {value!r}")
    family = book.profiles.get(model) if book is not None and model else None
    declared = any(v is not None for v in (ideal_cpus_per_gpu, ideal_memory_gib_per_gpu, speedup))
    summary = family.sensitivity if family is not None else None
    cpu_sat = ideal_cpus_per_gpu or (summary.ideal_cpu_per_gpu if summary else GENERIC_CPU_SATURATION)
    mem_sat = ideal_memory_gib_per_gpu or (summary.ideal_memory_gib_per_gpu if summary else GENERIC_MEMORY_SATURATION)
    if family is not None:
        curve = ModelProfile(
            model=family.model, samples_per_second=dict(family.samples_per_second),
            default_batch_size=family.default_batch_size,
            samples_per_epoch=samples_per_epoch if samples_per_epoch is not None else family.samples_per_epoch,
            sensitivity=None if declared else family.sensitivity, scale_with_gpus=family.scale_with_gpus,
            source=family.source,
        )
        mean = [0.0] * N_FEATURES
        sd = list(FAMILY_PRIOR_SD)
    else:
        reference = batch_size or GENERIC_BATCH_SIZE
        curve = ModelProfile(
            model=model or "unknown", samples_per_second={(reference, 1): GENERIC_SAMPLES_PER_SECOND},
            default_batch_size=reference, samples_per_epoch=samples_per_epoch,
            source="generic data-parallel prior",
        )
        mean = [0.0, GENERIC_GPU_EXPONENT - 1.0, 0.0, 0.0, 0.0]
        sd = list(GENERIC_PRIOR_SD)
    if declared:
        gain = speedup if speedup is not None else (summary.ideal_speedup if summary else 1.0)
        cpu_known = ideal_cpus_per_gpu is not None or summary is not None
        mem_known = ideal_memory_gib_per_gpu is not None or summary is not None
        spans = (max(0.0, math.log(cpu_sat / reference_cpu_per_gpu)) if cpu_known or not mem_known else 0.0,
                 max(0.0, math.log(mem_sat / reference_memory_gib_per_gpu)) if mem_known else 0.0)
        alpha = math.log(gain) / sum(spans) if sum(spans) > 0 and gain > 0 else 0.0
        for index, span in zip((3, 4), spans, strict=True):
            mean[index] = alpha if span > 0 else 0.0
            if speedup is not None or summary is not None:
                sd[index] = DECLARED_ELASTICITY_SD
        # An axis the speedup cannot shape (its ideal at or below the reference, no gain, or unknown) would read
        # flat, so a packer would see everything below the ideal as free: it slows in proportion below its ideal
        # instead (Synergy's ideal is the smallest allocation reaching the best rate), an unknown ideal being
        # the reference share.
        if mean[3] <= 0:
            cpu_sat = cpu_sat if cpu_known else reference_cpu_per_gpu
            mean[3], sd[3] = BELOW_IDEAL_ELASTICITY, DECLARED_ELASTICITY_SD
        if mean[4] <= 0:
            mem_sat = mem_sat if mem_known else reference_memory_gib_per_gpu
            mean[4], sd[4] = BELOW_IDEAL_ELASTICITY, DECLARED_ELASTICITY_SD
    return ThroughputPrior(
        curve=curve, mean=tuple(mean), sd=tuple(sd), cpu_saturation=float(cpu_sat),
        memory_saturation=float(mem_sat), reference_cpu_per_gpu=reference_cpu_per_gpu,
        reference_memory_gib_per_gpu=reference_memory_gib_per_gpu, declared=declared,
    )


@dataclass(frozen=True, slots=True)
class ThroughputReport:
    """One measurement: the allocation the job really held and the samples per second it made."""

    gpus: int
    batch_size: int
    cpu_per_gpu: float
    memory_gib_per_gpu: float
    samples_per_second: float

    def __post_init__(self) -> None:
        for name in ("gpus", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"a report's {name} must be a whole number >= 1, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("cpu_per_gpu", "memory_gib_per_gpu", "samples_per_second"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"a report's {name} must be a positive finite number, got {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True, slots=True)
class FoldedReports:
    """Reports that left the window, as weighted least-squares sums (weights frozen at folding)."""

    count: int = 0
    gram: tuple[tuple[float, ...], ...] = ((0.0,) * N_FEATURES,) * N_FEATURES  # Σ w z zᵀ
    shift: tuple[float, ...] = (0.0,) * N_FEATURES  # Σ w z r
    squares: float = 0.0  # Σ w r²


@dataclass(frozen=True, slots=True)
class ThroughputEstimate:
    """Samples per second at one allocation: the posterior median and a 90 % credible interval."""

    samples_per_second: float
    log_sd: float
    low: float
    high: float

    @property
    def mean(self) -> float:
        """The posterior mean of a log-normal with this median and log-sd."""
        return self.samples_per_second * math.exp(self.log_sd**2 / 2)

    @property
    def std(self) -> float:
        return self.mean * math.sqrt(math.expm1(self.log_sd**2))


@dataclass(frozen=True, slots=True)
class _Fit:
    coefficients: np.ndarray
    covariance: np.ndarray
    noise_scale: float
    weights: np.ndarray


@dataclass(frozen=True, slots=True, eq=False)
class JobThroughputModel:
    """The throughput posterior of one job: `JobThroughputModel(job_prior(...))`, or `from_status`."""

    prior: ThroughputPrior
    reports: tuple[ThroughputReport, ...] = ()
    folded: FoldedReports = field(default_factory=FoldedReports)
    window: int = WINDOW
    _fit: _Fit = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"the report window must be 1..{MAX_WINDOW}, got {self.window}")
        if len(self.reports) > self.window:
            raise ValueError(f"{len(self.reports)} reports do not fit a window of {self.window}")
        object.__setattr__(self, "_fit", _fit(self.prior, self.folded, self.reports))

    def _at(self, gpus: int, batch_size: int, cpu_per_gpu: float | None, memory_gib_per_gpu: float | None,
            samples_per_second: float) -> ThroughputReport:
        """An allocation as a report; CPU/memory `None` means the prior's reference share."""
        return ThroughputReport(
            gpus=gpus, batch_size=batch_size,
            cpu_per_gpu=self.prior.reference_cpu_per_gpu if cpu_per_gpu is None else cpu_per_gpu,
            memory_gib_per_gpu=self.prior.reference_memory_gib_per_gpu if memory_gib_per_gpu is None
            else memory_gib_per_gpu,
            samples_per_second=samples_per_second,
        )

    # -- learning -------------------------------------------------------------------------------

    def observe(
        self,
        *,
        gpus: int,
        batch_size: int,
        samples_per_second: float,
        cpu_per_gpu: float | None = None,
        memory_gib_per_gpu: float | None = None,
    ) -> JobThroughputModel:
        """A new posterior with one more report; CPU/memory `None` means the reference share."""
        report = self._at(gpus, batch_size, cpu_per_gpu, memory_gib_per_gpu, samples_per_second)
        reports = (*self.reports, report)
        folded = self.folded
        if len(reports) > self.window:
            full = _fit(self.prior, folded, reports)
            folded = _fold(self.prior, folded, reports[0], float(full.weights[0]))
            reports = reports[1:]
        return replace(self, reports=reports, folded=folded)

    @property
    def observed(self) -> int:
        """Reports learned from, folded ones included."""
        return self.folded.count + len(self.reports)

    @property
    def coefficients(self) -> dict[str, float]:
        return dict(zip(FEATURES, (float(v) for v in self._fit.coefficients), strict=True))

    @property
    def noise_scale(self) -> float:
        """The fitted scale of the Student-t report noise on log-throughput."""
        return self._fit.noise_scale

    def report_weights(self) -> tuple[float, ...]:
        """Each windowed report's EM weight, (ν + 1)/(ν + (residual/scale)²): near 0 marks an outlier."""
        return tuple(float(w) for w in self._fit.weights)

    # -- predicting -----------------------------------------------------------------------------

    def estimate(
        self,
        *,
        gpus: int,
        batch_size: int,
        cpu_per_gpu: float | None = None,
        memory_gib_per_gpu: float | None = None,
    ) -> ThroughputEstimate:
        """The posterior of samples per second at an allocation (CPU/memory `None`: the reference share)."""
        report = self._at(gpus, batch_size, cpu_per_gpu, memory_gib_per_gpu, 1.0)
        z = _features(self.prior, report)
        centre = _offset(self.prior, report) + float(z @ self._fit.coefficients)
        log_sd = math.sqrt(max(0.0, float(z @ self._fit.covariance @ z)))
        return ThroughputEstimate(
            samples_per_second=math.exp(centre), log_sd=log_sd,
            low=math.exp(centre - CREDIBLE_Z * log_sd), high=math.exp(centre + CREDIBLE_Z * log_sd),
        )

    def throughput(self, batch_size: int, gpus: int, cpu_per_gpu: float | None = None,
                   memory_gib_per_gpu: float | None = None) -> float:
        """The posterior median, with `ModelProfile.throughput`'s signature (0 for no GPUs)."""
        if gpus <= 0:
            return 0.0
        return self.estimate(gpus=gpus, batch_size=batch_size, cpu_per_gpu=cpu_per_gpu,
                             memory_gib_per_gpu=memory_gib_per_gpu).samples_per_second

    def as_profile(
        self,
        *,
        batch_sizes: Iterable[int] | None = None,
        gpu_counts: Iterable[int] | None = None,
    ) -> ModelProfile:
        """The posterior median as a `ModelProfile`: a table at the reference share, and a CPU × memory grid.

        Default batch sizes: the prior's, the reported ones; default GPU counts: powers of two to 64,
        the prior's and the reported ones. The grid is left out while nothing (family, declaration or
        a report away from the reference share) speaks about CPU or memory, so a packer does not read
        "insensitive" into silence.
        """
        prior = self.prior
        sizes = sorted(set(batch_sizes) if batch_sizes is not None else (
            {b for b, _ in prior.curve.samples_per_second} | {r.batch_size for r in self.reports}))
        counts = sorted(set(gpu_counts) if gpu_counts is not None else (
            {2**k for k in range(7)} | {g for _, g in prior.curve.samples_per_second} | {r.gpus for r in self.reports}))
        if not sizes or not counts or min(sizes) < 1 or min(counts) < 1:
            raise ValueError("as_profile needs at least one batch size and one GPU count, all >= 1")
        keys = [(b, g) for b in sizes for g in counts]
        rates = self._medians([(b, g, prior.reference_cpu_per_gpu, prior.reference_memory_gib_per_gpu)
                               for b, g in keys])
        table = dict(zip(keys, rates, strict=True))
        return ModelProfile(
            model=prior.curve.model, samples_per_second=table, default_batch_size=prior.reference_batch_size,
            samples_per_epoch=prior.curve.samples_per_epoch, sensitivity=self._sensitivity(),
            scale_with_gpus=prior.curve.scale_with_gpus,
            source=f"learned online from {self.observed} reports; prior: {prior.curve.source or prior.curve.model}",
        )

    def _medians(self, allocations: Sequence[tuple[int, int, float, float]]) -> list[float]:
        """`throughput` at many (batch size, GPUs, CPUs and GiB per GPU) at once: `as_profile` tables a
        hundred or so, and one matrix product is what keeps a refit per report cheap (the simulator
        refits each running job every round)."""
        prior = self.prior
        points = np.array(allocations, dtype=float).reshape(len(allocations), 4)
        cpu_sat, mem_sat = prior.cpu_saturation, prior.memory_saturation
        z = np.column_stack([
            np.ones(len(points)), np.log(points[:, 1]), np.log(points[:, 0] / prior.reference_batch_size),
            np.log(np.minimum(points[:, 2], cpu_sat) / min(prior.reference_cpu_per_gpu, cpu_sat)),
            np.log(np.minimum(points[:, 3], mem_sat) / min(prior.reference_memory_gib_per_gpu, mem_sat)),
        ])
        curve = np.array([prior.curve.throughput(b, g, c, m) for b, g, c, m in allocations])
        return [float(v) for v in np.exp(np.log(np.maximum(curve, 1e-6)) + z @ self._fit.coefficients)]

    def _sensitivity(self) -> ResourceSensitivity | None:
        prior = self.prior
        spoken = (prior.curve.sensitivity is not None or prior.declared
                  or any(r.cpu_per_gpu != prior.reference_cpu_per_gpu
                         or r.memory_gib_per_gpu != prior.reference_memory_gib_per_gpu for r in self.reports)
                  or _resource_evidence(self.folded))
        if not spoken:
            return None
        grid = prior.curve.sensitivity
        cpus = sorted({*DEFAULT_CPU_AXIS, prior.reference_cpu_per_gpu, prior.cpu_saturation,
                       *(grid.cpu_per_gpu if grid else ())})
        memory = sorted({*DEFAULT_MEMORY_AXIS, prior.reference_memory_gib_per_gpu, prior.memory_saturation,
                         *(grid.memory_gib_per_gpu if grid else ())})
        b, g = prior.reference_batch_size, 1
        rates = self._medians([(b, g, prior.reference_cpu_per_gpu, prior.reference_memory_gib_per_gpu)]
                              + [(b, g, c, m) for c in cpus for m in memory])
        base, cells = rates[0], iter(rates[1:])
        matrix = tuple(tuple(next(cells) / base for _ in memory) for _ in cpus)
        best = max(max(row) for row in matrix)
        ideal = min((c, m) for i, c in enumerate(cpus) for j, m in enumerate(memory)
                    if matrix[i][j] >= NEAR_BEST * best)
        return ResourceSensitivity(cpu_per_gpu=tuple(cpus), memory_gib_per_gpu=tuple(memory),
                                   relative_throughput=matrix, ideal_cpu_per_gpu=ideal[0],
                                   ideal_memory_gib_per_gpu=ideal[1], ideal_speedup=best)

    # -- persistence ----------------------------------------------------------------------------

    def to_status(self) -> dict[str, Any]:
        """A JSON-able dict, bounded by the window and the prior's table; `from_status` restores it exactly."""
        prior, curve, folded = self.prior, self.prior.curve, self.folded
        grid = curve.sensitivity
        return {
            "version": STATUS_VERSION,
            "prior": {
                "model": curve.model,
                "throughput": [[b, g, float(v)] for (b, g), v in sorted(curve.samples_per_second.items())],
                "defaultBatchSize": curve.default_batch_size,
                "samplesPerEpoch": curve.samples_per_epoch,
                "scaleWithGpus": curve.scale_with_gpus,
                "source": curve.source,
                "sensitivity": None if grid is None else {
                    "cpuPerGpu": list(grid.cpu_per_gpu),
                    "memoryGibPerGpu": list(grid.memory_gib_per_gpu),
                    "relativeThroughput": [list(row) for row in grid.relative_throughput],
                    "idealCpuPerGpu": grid.ideal_cpu_per_gpu,
                    "idealMemoryGibPerGpu": grid.ideal_memory_gib_per_gpu,
                    "idealSpeedup": grid.ideal_speedup,
                },
                "mean": list(prior.mean),
                "sd": list(prior.sd),
                "cpuSaturation": prior.cpu_saturation,
                "memorySaturation": prior.memory_saturation,
                "referenceCpuPerGpu": prior.reference_cpu_per_gpu,
                "referenceMemoryGibPerGpu": prior.reference_memory_gib_per_gpu,
                "noiseScale": prior.noise_scale,
                "noiseDof": prior.noise_dof,
                "declared": prior.declared,
            },
            "window": self.window,
            "reports": [[r.gpus, r.batch_size, r.cpu_per_gpu, r.memory_gib_per_gpu, r.samples_per_second]
                        for r in self.reports],
            "folded": {
                "count": folded.count,
                "gram": [list(row) for row in folded.gram],
                "shift": list(folded.shift),
                "squares": folded.squares,
            },
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> JobThroughputModel:
        """The posterior `to_status` wrote; anything malformed is refused with a ValueError saying what."""
        try:
            return _from_status(status)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            what = f"missing field {err}" if isinstance(err, KeyError) else str(err)
            raise ValueError(f"malformed job model status: {what}") from None


def job_profile(
    model: JobThroughputModel,
    *,
    batch_sizes: Iterable[int] = (),
    gpus_per_worker: int,
    min_workers: int,
    max_workers: int,
) -> ModelProfile:
    """The posterior median as the profile a round reads, tabled where this job can be.

    Batch sizes: the prior's, the reported ones and `batch_sizes` (those the job may switch to).
    GPU counts: powers of two to 64, the prior's and the reported ones, the job's minimum and maximum,
    and its power-of-two worker counts, because between tabled counts a profile scales linearly from
    the one below and an untabled count would be read off the wrong curve. The operator and the
    simulator both build a job's learned profile here, so the two see the same table.
    """
    sizes = {b for b, _ in model.prior.curve.samples_per_second} | {r.batch_size for r in model.reports}
    sizes |= set(batch_sizes)
    counts = {2**k for k in range(7)} | {g for _, g in model.prior.curve.samples_per_second}
    counts |= {r.gpus for r in model.reports} | {min_workers * gpus_per_worker, max_workers * gpus_per_worker}
    workers = 1
    while workers <= max_workers:
        counts.add(workers * gpus_per_worker)
        workers *= 2
    return model.as_profile(batch_sizes=sizes, gpu_counts=counts)


def _features(prior: ThroughputPrior, report: ThroughputReport) -> np.ndarray:
    cpu_sat, mem_sat = prior.cpu_saturation, prior.memory_saturation
    return np.array([
        1.0,
        math.log(report.gpus),
        math.log(report.batch_size / prior.reference_batch_size),
        math.log(min(report.cpu_per_gpu, cpu_sat) / min(prior.reference_cpu_per_gpu, cpu_sat)),
        math.log(min(report.memory_gib_per_gpu, mem_sat) / min(prior.reference_memory_gib_per_gpu, mem_sat)),
    ])


def _offset(prior: ThroughputPrior, report: ThroughputReport) -> float:
    """log of the prior curve; a grid cell of 0 would be -inf, so it is floored at a millionth."""
    rate = prior.curve.throughput(report.batch_size, report.gpus, report.cpu_per_gpu, report.memory_gib_per_gpu)
    return math.log(max(rate, 1e-6))


def _resource_evidence(folded: FoldedReports) -> bool:
    return folded.count > 0 and (folded.gram[3][3] > 0 or folded.gram[4][4] > 0)


def _fit(prior: ThroughputPrior, folded: FoldedReports, reports: Sequence[ThroughputReport]) -> _Fit:
    """EM for a Student-t linear model with a Gaussian prior on φ and an inverse-χ² prior on the scale."""
    m0 = np.array(prior.mean)
    precision0 = np.diag(1.0 / np.square(np.array(prior.sd)))
    gram_f, shift_f = np.array(folded.gram), np.array(folded.shift)
    if not reports and folded.count == 0:
        return _Fit(m0, np.diag(np.square(np.array(prior.sd))), prior.noise_scale, np.zeros(0))
    z = np.array([_features(prior, r) for r in reports]).reshape(len(reports), N_FEATURES)
    y = np.array([math.log(r.samples_per_second) - _offset(prior, r) for r in reports])
    nu, s0sq = prior.noise_dof, prior.noise_scale**2
    count = NOISE_PSEUDO_COUNT + folded.count + len(reports)
    coef = m0.copy()
    if len(reports):
        residual = y - z @ coef
        level = float(np.median(residual))
        coef[0] += level
        mad = 1.4826 * float(np.median(np.abs(residual - level)))
        scale_sq = max(s0sq, mad**2)
    else:
        scale_sq = s0sq
    for _ in range(_MAX_ITERATIONS):
        e = y - z @ coef
        w = (nu + 1.0) / (nu + e**2 / scale_sq)
        precision = precision0 + (gram_f + z.T @ (w[:, None] * z)) / scale_sq
        rhs = precision0 @ m0 + (shift_f + z.T @ (w * y)) / scale_sq
        new = np.linalg.solve(precision, rhs)
        e = y - z @ new
        folded_sq = max(0.0, folded.squares - 2.0 * float(new @ shift_f) + float(new @ gram_f @ new))
        scale_sq = max(NOISE_FLOOR**2, (NOISE_PSEUDO_COUNT * s0sq + folded_sq + float(w @ e**2)) / count)
        done = float(np.max(np.abs(new - coef))) < _TOLERANCE
        coef = new
        if done:
            break
    e = y - z @ coef
    w = (nu + 1.0) / (nu + e**2 / scale_sq)
    precision = precision0 + (gram_f + z.T @ (w[:, None] * z)) / scale_sq
    return _Fit(coef, np.linalg.inv(precision), math.sqrt(scale_sq), w)


def _fold(prior: ThroughputPrior, folded: FoldedReports, report: ThroughputReport, weight: float) -> FoldedReports:
    z = _features(prior, report)
    r = math.log(report.samples_per_second) - _offset(prior, report)
    gram = np.array(folded.gram) + weight * np.outer(z, z)
    shift = np.array(folded.shift) + weight * r * z
    return FoldedReports(
        count=folded.count + 1,
        gram=tuple(tuple(float(v) for v in row) for row in gram),
        shift=tuple(float(v) for v in shift),
        squares=folded.squares + weight * r * r,
    )


# -- reading a status back -------------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} must be an object, got {type(value).__name__}")
    return value


def _list(value: Any, where: str, *, length: int | None = None, most: int | None = None) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"{where} must be a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise ValueError(f"{where} must have {length} entries, has {len(value)}")
    if most is not None and len(value) > most:
        raise ValueError(f"{where} has {len(value)} entries, at most {most} allowed")
    return list(value)


def _number(value: Any, where: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{where} must be positive, got {value!r}")
    if nonnegative and value < 0:
        raise ValueError(f"{where} must not be negative, got {value!r}")
    return float(value)


def _whole(value: Any, where: str, *, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{where} must be a whole number >= {least}, got {value!r}")
    return value


def _numbers(value: Any, where: str, *, length: int | None = None, most: int | None = None,
             positive: bool = False) -> tuple[float, ...]:
    return tuple(_number(v, f"{where}[{i}]", positive=positive)
                 for i, v in enumerate(_list(value, where, length=length, most=most)))


def _grid(value: Any) -> ResourceSensitivity | None:
    if value is None:
        return None
    spec = _mapping(value, "prior.sensitivity")
    cpus = _numbers(spec["cpuPerGpu"], "prior.sensitivity.cpuPerGpu", most=MAX_GRID_POINTS, positive=True)
    memory = _numbers(spec["memoryGibPerGpu"], "prior.sensitivity.memoryGibPerGpu", most=MAX_GRID_POINTS,
                      positive=True)
    rows = _list(spec["relativeThroughput"], "prior.sensitivity.relativeThroughput", length=len(cpus))
    matrix = tuple(_numbers(row, f"prior.sensitivity.relativeThroughput[{i}]", length=len(memory))
                   for i, row in enumerate(rows))
    if not cpus or not memory:
        raise ValueError("prior.sensitivity needs at least one CPU and one memory grid point")
    if any(v < 0 for row in matrix for v in row):
        raise ValueError("prior.sensitivity.relativeThroughput must not be negative")
    return ResourceSensitivity(
        cpu_per_gpu=cpus, memory_gib_per_gpu=memory, relative_throughput=matrix,
        ideal_cpu_per_gpu=_number(spec["idealCpuPerGpu"], "prior.sensitivity.idealCpuPerGpu", positive=True),
        ideal_memory_gib_per_gpu=_number(spec["idealMemoryGibPerGpu"], "prior.sensitivity.idealMemoryGibPerGpu",
                                         positive=True),
        ideal_speedup=_number(spec["idealSpeedup"], "prior.sensitivity.idealSpeedup", positive=True),
    )


def _prior(value: Any) -> ThroughputPrior:
    spec = _mapping(value, "prior")
    model = spec["model"]
    if not isinstance(model, str) or not model:
        raise ValueError(f"prior.model must be a non-empty string, got {model!r}")
    entries = _list(spec["throughput"], "prior.throughput", most=MAX_TABLE_ENTRIES)
    table: dict[tuple[int, int], float] = {}
    for i, entry in enumerate(entries):
        b, g, rate = _list(entry, f"prior.throughput[{i}]", length=3)
        key = (_whole(b, f"prior.throughput[{i}] batch size"), _whole(g, f"prior.throughput[{i}] GPUs"))
        if key in table:
            raise ValueError(f"prior.throughput[{i}] repeats batch size {key[0]} on {key[1]} GPUs")
        table[key] = _number(rate, f"prior.throughput[{i}] samples per second", positive=True)
    epoch = spec["samplesPerEpoch"]
    if epoch is not None:
        _number(epoch, "prior.samplesPerEpoch", positive=True)
    declared = spec["declared"]
    if not isinstance(declared, bool):
        raise ValueError(f"prior.declared must be true or false, got {declared!r}")
    source = spec["source"]
    scale = spec["scaleWithGpus"]
    if not isinstance(scale, bool):
        raise ValueError(f"prior.scaleWithGpus must be true or false, got {scale!r}")
    if not isinstance(source, str):
        raise ValueError(f"prior.source must be a string, got {source!r}")
    curve = ModelProfile(
        model=model, samples_per_second=table,
        default_batch_size=_whole(spec["defaultBatchSize"], "prior.defaultBatchSize"),
        samples_per_epoch=epoch,
        sensitivity=_grid(spec["sensitivity"]), scale_with_gpus=scale, source=source,
    )
    return ThroughputPrior(
        curve=curve,
        mean=_numbers(spec["mean"], "prior.mean", length=N_FEATURES),
        sd=_numbers(spec["sd"], "prior.sd", length=N_FEATURES, positive=True),
        cpu_saturation=_number(spec["cpuSaturation"], "prior.cpuSaturation", positive=True),
        memory_saturation=_number(spec["memorySaturation"], "prior.memorySaturation", positive=True),
        reference_cpu_per_gpu=_number(spec["referenceCpuPerGpu"], "prior.referenceCpuPerGpu", positive=True),
        reference_memory_gib_per_gpu=_number(spec["referenceMemoryGibPerGpu"], "prior.referenceMemoryGibPerGpu",
                                             positive=True),
        noise_scale=_number(spec["noiseScale"], "prior.noiseScale", positive=True),
        noise_dof=_number(spec["noiseDof"], "prior.noiseDof", positive=True),
        declared=declared,
    )


def _folded(value: Any) -> FoldedReports:
    spec = _mapping(value, "folded")
    count = _whole(spec["count"], "folded.count", least=0)
    gram = tuple(_numbers(row, f"folded.gram[{i}]", length=N_FEATURES)
                 for i, row in enumerate(_list(spec["gram"], "folded.gram", length=N_FEATURES)))
    shift = _numbers(spec["shift"], "folded.shift", length=N_FEATURES)
    squares = _number(spec["squares"], "folded.squares", nonnegative=True)
    matrix = np.array(gram)
    if not np.allclose(matrix, matrix.T, rtol=1e-9, atol=1e-12):
        raise ValueError("folded.gram must be symmetric")
    if count and float(np.min(np.linalg.eigvalsh(matrix))) < -1e-9 * max(1.0, float(np.max(np.abs(matrix)))):
        raise ValueError("folded.gram must be positive semi-definite")
    if count == 0 and (np.any(matrix) or any(shift) or squares):
        raise ValueError("folded sums must be zero when no report was folded")
    return FoldedReports(count=count, gram=gram, shift=shift, squares=squares)


def _from_status(status: Mapping[str, Any]) -> JobThroughputModel:
    spec = _mapping(status, "status")
    if spec.get("version") != STATUS_VERSION:
        raise ValueError(f"unknown version {spec.get('version')!r} (this Stretto reads {STATUS_VERSION})")
    unknown = set(spec) - {"version", "prior", "window", "reports", "folded"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    window = _whole(spec["window"], "window")
    if window > MAX_WINDOW:
        raise ValueError(f"window must be at most {MAX_WINDOW}, got {window}")
    reports = []
    for i, entry in enumerate(_list(spec["reports"], "reports", most=window)):
        gpus, batch, cpu, memory, rate = _list(entry, f"reports[{i}]", length=5)
        reports.append(ThroughputReport(
            gpus=_whole(gpus, f"reports[{i}] GPUs"), batch_size=_whole(batch, f"reports[{i}] batch size"),
            cpu_per_gpu=_number(cpu, f"reports[{i}] CPUs per GPU", positive=True),
            memory_gib_per_gpu=_number(memory, f"reports[{i}] memory per GPU", positive=True),
            samples_per_second=_number(rate, f"reports[{i}] samples per second", positive=True),
        ))
    return JobThroughputModel(prior=_prior(spec["prior"]), reports=tuple(reports), folded=_folded(spec["folded"]),
                              window=window)
