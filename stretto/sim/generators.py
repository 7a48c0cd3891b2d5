"""Seeded workload generators in the style of the peers' evaluations.

- `synergy`: Synergy's synthetic workload. Task classes image/language/speech with a target
  split (default 20/70/10 %): each job goes to the class furthest below its target, models
  round-robin inside a class. Durations: with p = 0.8, 60·10^U(1.5, 3) s, else 60·10^U(3, 4) s
  (Gavel's law). GPUs 1/2/4/8 with p = .7/.1/.15/.05 when `multigpu`, else 1. Poisson
  arrivals at `jobs_per_hour` (`jobs_per_hour=0`: all at time 0, a static trace). Work = the
  duration at the GPU-proportional share.
- `shockwave`: Gavel's trace generator as Shockwave uses it. Poisson arrivals with mean
  inter-arrival `mean_interarrival_s`; durations from `n_durations` log-spaced values in
  [min_hours, max_hours] with Pollux's skew (72 % from the shortest 20 %, 20 % from 20–50 %,
  5 % from 50–90 %, 3 % from the top 10 %); GPUs 1/2/4/8 with p = .6/.3/.09/.01; adaptation
  mode static/accordion/gns with `mode_mix`; accordion jobs shorter than 1000 s become static.

A spec on the command line reads `NAME:key=value,...`, e.g. `synergy:jobs=100,jobs_per_hour=0`.
`combined:` (Shockwave-style jobs with Synergy's CPU/memory sensitivity) is in `combined_workload`;
`elastic:` (elastic ranges, 1–8 GPUs per worker, adaptation, tenants and weights, on the same
profiles) in `elastic_workload`.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.sim.workloads import WorkloadError, WorkloadJob, format_validation_error

SYNERGY_CLASSES = {
    "image": (
        ("alexnet",),
        ("res18", "resnet18"),
        ("res50", "resnet50"),
        ("mobilenet", "mobilenet_v2"),
        ("shufflenet",),
    ),
    "language": (("gnmt",), ("transformer",), ("lstm", "lstm_lm")),
    "speech": (("m5",), ("deepspeech",)),
}
SHOCKWAVE_MODELS = ("ResNet-18", "ResNet-50", "Transformer", "LM", "Recommendation")


class SynergyWorkloadArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    jobs: int = Field(100, ge=1, description="number of jobs")
    jobs_per_hour: float = Field(9.0, ge=0, description="Poisson arrival rate; 0 = all jobs at time 0")
    multigpu: bool = Field(False, description="draw GPU counts 1/2/4/8 instead of 1")
    split: tuple[float, float, float] = Field((20.0, 70.0, 10.0), description="image/language/speech target, %")


class ShockwaveWorkloadArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    jobs: int = Field(120, ge=1, description="number of jobs")
    mean_interarrival_s: float = Field(40.0, ge=0, description="mean seconds between arrivals")
    min_hours: float = Field(0.2, gt=0, description="shortest duration, hours")
    max_hours: float = Field(5.0, gt=0, description="longest duration, hours")
    n_durations: int = Field(100, ge=10, description="log-spaced duration values")
    mode_mix: tuple[float, float, float] = Field((0.0, 0.5, 0.5), description="static/accordion/gns probabilities")
    gpu_mix: tuple[float, float, float, float] = Field((0.6, 0.3, 0.09, 0.01), description="1/2/4/8 GPUs")


def _resolve(book: ProfileBook, aliases: tuple[str, ...]) -> str | None:
    return next((a for a in aliases if a in book), None)


def _samples_for(profile: ModelProfile, batch: int, gpus: int, seconds: float) -> float:
    return profile.throughput(batch, gpus) * seconds


def generate_synergy(args: SynergyWorkloadArgs, *, profiles: ProfileBook, seed: int) -> list[WorkloadJob]:
    rng = np.random.default_rng(seed)
    classes = {
        name: [m for m in (_resolve(profiles, a) for a in aliases) if m] for name, aliases in SYNERGY_CLASSES.items()
    }
    targets = dict(zip(SYNERGY_CLASSES, args.split, strict=True))
    classes = {k: v for k, v in classes.items() if v and targets[k] > 0}
    if not classes:
        raise WorkloadError(f"no Synergy model names in {profiles.source}")
    counts = dict.fromkeys(classes, 0)
    cursor = dict.fromkeys(classes, 0)
    t = 0.0
    jobs = []
    for i in range(args.jobs):
        total = max(1, i)
        cls = min(classes, key=lambda c: (counts[c] / total * 100 - targets[c], list(classes).index(c)))
        model = classes[cls][cursor[cls] % len(classes[cls])]
        cursor[cls] += 1
        counts[cls] += 1
        low, high = (1.5, 3.0) if rng.random() < 0.8 else (3.0, 4.0)
        duration = 60.0 * 10 ** rng.uniform(low, high)
        gpus = int(rng.choice([1, 2, 4, 8], p=[0.7, 0.1, 0.15, 0.05])) if args.multigpu else 1
        if args.jobs_per_hour > 0 and i > 0:
            t += rng.exponential(3600.0 / args.jobs_per_hour)
        profile = profiles.get(model)
        batch = profile.default_batch_size
        samples = _samples_for(profile, batch, gpus, duration)
        jobs.append(
            WorkloadJob(
                id=f"s{i:05d}",
                arrival_s=round(t, 3),
                model=model,
                batch_size=batch,
                epochs=1,
                samples_per_epoch=max(1, round(samples)),
                workers={"min": gpus, "max": gpus},
            )
        )  # type: ignore[arg-type]
    return jobs


def generate_shockwave(args: ShockwaveWorkloadArgs, *, profiles: ProfileBook, seed: int) -> list[WorkloadJob]:
    rng = np.random.default_rng(seed)
    models = [m for m in SHOCKWAVE_MODELS if m in profiles] or sorted(profiles.profiles)
    durations = np.logspace(np.log10(args.min_hours * 3600), np.log10(args.max_hours * 3600), args.n_durations)
    n = args.n_durations
    buckets = [
        durations[: int(0.2 * n)],
        durations[int(0.2 * n) : int(0.5 * n)],
        durations[int(0.5 * n) : int(0.9 * n)],
        durations[int(0.9 * n) :],
    ]
    t = 0.0
    jobs = []
    for i in range(args.jobs):
        if i > 0 and args.mean_interarrival_s > 0:
            t += rng.exponential(args.mean_interarrival_s)
        bucket = buckets[int(rng.choice(4, p=[0.72, 0.20, 0.05, 0.03]))]
        duration = float(rng.choice(bucket))
        model = models[int(rng.integers(len(models)))]
        profile = profiles.get(model)
        sizes = profile.batch_sizes
        batch = int(sizes[int(rng.integers(max(1, len(sizes) - 1)))])  # not the largest: room to grow
        gpus = int(rng.choice([1, 2, 4, 8], p=list(args.gpu_mix)))
        while gpus > 1 and all(g < gpus for b, g in profile.samples_per_second if b == batch):
            gpus //= 2
        mode = str(rng.choice(["none", "accordion", "gns"], p=list(args.mode_mix)))
        if mode == "accordion" and duration < 1000:
            mode = "none"
        per_epoch = profile.samples_per_epoch or profile.default_batch_size * 100
        epochs = max(1, round(_samples_for(profile, batch, gpus, duration) / per_epoch))
        jobs.append(
            WorkloadJob(
                id=f"w{i:05d}",
                arrival_s=round(t, 3),
                model=model,
                batch_size=batch,
                epochs=epochs,
                samples_per_epoch=per_epoch,
                workers={"min": gpus, "max": gpus},
                adaptation={"mode": mode, "batch_sizes": [max(sizes)]},
            )
        )  # type: ignore[arg-type]
    return jobs


GENERATORS = {
    "synergy": (SynergyWorkloadArgs, generate_synergy),
    "shockwave": (ShockwaveWorkloadArgs, generate_shockwave),
}
GENERATOR_PREFIXES = tuple(GENERATORS)


def generate_from_spec(
    spec: str, *, profiles: ProfileBook, seed: int, generators: dict | None = None
) -> list[WorkloadJob]:
    name, _, rest = spec.partition(":")
    args_model, generate = {**GENERATORS, **(generators or {})}[name]
    raw: dict[str, object] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise WorkloadError(f"generator {spec!r}: {item!r} is not key=value")
        raw[key.strip()] = value.split("/") if "/" in value else value
    try:
        args = args_model.model_validate(raw)
    except ValidationError as err:
        raise WorkloadError(f"generator {name!r}: {format_validation_error(err)}") from None
    return generate(args, profiles=profiles, seed=seed)  # type: ignore[operator]
