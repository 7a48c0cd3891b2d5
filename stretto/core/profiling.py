"""Which jobs to profile, at which CPUs per GPU next, and when profiling is done (issue 14, item 2).

A job whose CPU/memory sensitivity nobody knows (no family grid, nothing declared) is packed at the
proportional share, and at that share no report ever says anything about CPUs: the CPU elasticity
is not identifiable while every report holds the same CPUs. Profiling makes the reports vary CPU.
Synergy measures a CPU axis and derives the memory axis analytically; here:

- CPU: a knee search on Synergy's CPU axis (`DEFAULT_CPU_AXIS` up to `GENERIC_CPU_SATURATION`, 12
  per GPU), one point per round, each point the job's own report at the allocation it was given.
  Synergy's walk (`optimistic_profiling.next_cpu_to_measure`: start at all CPUs, halve while within
  10 %) is built for a dedicated profiling run; live, a point is a restart and a round at that
  allocation, and all of a server's CPUs are rarely free. So the search starts where the job runs
  (its first report costs nothing), goes *down* first (always grantable, and under Synergy's concave
  curves a job flat at half its CPUs is flat above too: an insensitive job is done after one probe),
  goes up by doubling only while it rises, then bisects the axis points between the last drop and
  the knee. A point within `TOLERANCE` (Synergy's 10 %) of the best counts as the best; the knee is
  the smallest such point, Synergy's "ideal demand". Each probe is an unmeasured axis point, so the
  search ends; the job is finally run at the knee, and a cap on restarts bounds a noisy search. A
  job sitting at a slow point asks for the best point so far as its second choice, so an up-probe
  that finds no slack does not leave it pinned there.
- Memory: not probed. It stays at the proportional share; from the first report on, the model
  records that below the reference share the job slows (in proportion) and above it no gain is
  claimed (`_memory_unprobed`), since the probes make the grid readable. Synergy's analytic
  memory model needs the dataset size and the storage and memory bandwidths, which an unknown job
  does not tell us.

When the search is done, `profiled` turns its result into prior information (the CPU saturation
point is the knee, `declared` is set), so the grid a packer reads has its ideal CPU at the knee and
the CPU elasticity below it is learned from the probe reports; nothing is stored beside the model,
and its persisted form is the one `JobThroughputModel.to_status` already writes. The adapter (the
simulator, later the operator) calls `advance_profiling` after each report and hands the probe to
the packer in `JobState.probe_cpus_per_gpu`.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass, replace

from stretto.core.job_model import (
    BELOW_IDEAL_ELASTICITY,
    DECLARED_ELASTICITY_SD,
    GENERIC_CPU_SATURATION,
    JobThroughputModel,
    ThroughputPrior,
)
from stretto.core.optimistic_profiling import DEFAULT_CPU_AXIS

PROBE_AXIS = tuple(c for c in DEFAULT_CPU_AXIS if c <= GENERIC_CPU_SATURATION)
TOLERANCE = 0.10  # Synergy's walk: within 10 % of a point counts as the same throughput
MAX_RESTARTS = 8  # CPU changes while profiling: the axis has 8 points, so a clean search needs at most 8
SAME_CPU = 1e-6
DOWN_STEP = 0.5  # the first probe halves the CPUs, as Synergy's walk does
PROFILED_SOURCE = "CPU knee profiled"


@dataclass(frozen=True, slots=True)
class ProfilingStep:
    """Where the knee search stands: the CPUs per GPU to run at next (by preference), or the knee once done.

    The second preference is the best point so far, when the job now sits at a point below it: a probe
    that does not fit (an up-probe needs slack) must not leave it pinned where it runs slowly.
    """

    probes: tuple[float, ...]
    knee_cpu_per_gpu: float | None
    done: bool


def needs_profiling(model: JobThroughputModel) -> bool:
    """Nothing speaks about the job's CPU/memory sensitivity: no family grid, nothing declared or profiled."""
    return model.prior.curve.sensitivity is None and not model.prior.declared


def measured_points(model: JobThroughputModel) -> dict[float, float]:
    """CPUs per GPU -> relative throughput there (geometric mean over the window's reports).

    Each report is divided by the posterior's rate at its own GPUs and batch size on the reference
    share, which holds no CPU term, so reports an elastic job made on different GPU counts compare.
    """
    logs: dict[float, list[float]] = defaultdict(list)
    for r in model.reports:
        base = model.throughput(r.batch_size, r.gpus)
        logs[round(r.cpu_per_gpu, 6)].append(math.log(r.samples_per_second / base))
    return {c: math.exp(sum(v) / len(v)) for c, v in sorted(logs.items())}


def _restarts(model: JobThroughputModel) -> int:
    cpus = [r.cpu_per_gpu for r in model.reports]
    return sum(1 for a, b in itertools.pairwise(cpus) if abs(a - b) > SAME_CPU)


def knee_search(model: JobThroughputModel, *, axis: tuple[float, ...] = PROBE_AXIS,
                tolerance: float = TOLERANCE) -> ProfilingStep:
    """The next point of the search (down first, up while rising, then bisecting), or the knee."""
    points = measured_points(model)
    if not points:
        return ProfilingStep((), None, False)  # run as it is: its first report is the free first point
    best = max(points.values())
    knee = min(c for c, v in points.items() if v >= (1 - tolerance) * best)
    below = max((c for c in points if c < knee), default=None)
    above = any(c > knee for c in points)
    probe: float | None = None
    if below is None:
        down = [a for a in axis if a <= knee * DOWN_STEP + SAME_CPU] or [a for a in axis if a < knee - SAME_CPU][:1]
        probe = down[-1] if down else None
    elif not above:
        up = [a for a in axis if a >= 2 * knee - SAME_CPU] or [a for a in axis if a > knee + SAME_CPU][-1:]
        probe = up[0] if up else None
    if probe is None and below is not None:
        between = [a for a in axis if below + SAME_CPU < a < knee - SAME_CPU]
        probe = between[(len(between) - 1) // 2] if between else None
    last = round(model.reports[-1].cpu_per_gpu, 6)
    if probe is None or _restarts(model) >= MAX_RESTARTS:
        at_knee = abs(last - knee) <= SAME_CPU or _restarts(model) >= MAX_RESTARTS
        return ProfilingStep(() if at_knee else (knee,), knee, at_knee)
    slow = points[last] < (1 - tolerance) * best
    return ProfilingStep((probe, knee) if slow else (probe,), knee, False)


def _memory_unprobed(prior: ThroughputPrior) -> ThroughputPrior:
    """Memory saturated at the reference share, elasticity 1 below it: memory is not probed, so the grid
    must neither read less memory as free (a flat axis would: the packer would grant the axis minimum,
    a tenth of the speed for Synergy's families) nor claim a gain from more."""
    mean, sd = list(prior.mean), list(prior.sd)
    mean[4], sd[4] = BELOW_IDEAL_ELASTICITY, DECLARED_ELASTICITY_SD
    return replace(prior, memory_saturation=prior.reference_memory_gib_per_gpu, mean=tuple(mean), sd=tuple(sd))


def _refit(model: JobThroughputModel, prior: ThroughputPrior) -> JobThroughputModel:
    """The same reports against another prior. Profiling ends within the first reports, long before any
    leaves the window; reports already folded keep the features they were folded with."""
    return JobThroughputModel(prior=prior, reports=model.reports, folded=model.folded, window=model.window)


def profiled(model: JobThroughputModel, knee_cpu_per_gpu: float) -> JobThroughputModel:
    """The model with the search's result as prior information, refitted on the same reports.

    CPU saturation at the knee (the grid's ideal CPUs), memory as `_memory_unprobed`, `declared` set.
    The CPU elasticity keeps its prior and is learned from the probe reports.
    """
    prior = _memory_unprobed(model.prior)
    curve = replace(prior.curve, source=f"{prior.curve.source}; {PROFILED_SOURCE} at {knee_cpu_per_gpu:g}")
    return _refit(model, replace(prior, curve=curve, cpu_saturation=float(knee_cpu_per_gpu), declared=True))


def advance_profiling(model: JobThroughputModel) -> tuple[JobThroughputModel, tuple[float, ...]]:
    """After a report: the model (profiled once the search is done) and the CPUs per GPU to run at next."""
    if not needs_profiling(model):
        return model, ()
    if model.prior != _memory_unprobed(model.prior):
        model = _refit(model, _memory_unprobed(model.prior))  # the probes vary CPU: the grid is read from now on
    step = knee_search(model)
    if step.done and step.knee_cpu_per_gpu is not None:
        return profiled(model, step.knee_cpu_per_gpu), ()
    if step.knee_cpu_per_gpu is not None and model.prior.cpu_saturation != step.knee_cpu_per_gpu:
        # Meanwhile the grid claims no gain past the best point measured: a job whose up-probe waits for
        # slack is not granted slack it may not use.
        model = _refit(model, replace(model.prior, cpu_saturation=step.knee_cpu_per_gpu))
    return model, step.probes
