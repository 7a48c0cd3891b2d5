"""Reading profile books: Stretto's own format (and its built-ins) and the peers' files.

Own format, `{"format": "stretto.profiles/v1", "models": {name: {...}}}`, one object per model:
`default_batch_size`, `samples_per_epoch`, `throughput` (a list of {batch_size, gpus,
samples_per_second} at the GPU-proportional share), `scale_with_gpus`, `source` (where the
numbers come from) and optionally `sensitivity`: either an explicit grid
({cpu_per_gpu, memory_gib_per_gpu, relative_throughput, ideal_cpu_per_gpu,
ideal_memory_gib_per_gpu, ideal_speedup}) or `optimistic` inputs for
`optimistic_sensitivity` (measured CPU points plus dataset size and bandwidths).

Peer formats, for comparisons: Synergy's `model_profiles.json`, Shockwave's
`tacc_throughputs.json` (+ `datasets.json` beside it) and Pollux's traces folder
(`stretto.core.pollux_traces`).
"""

from __future__ import annotations

import ast
import json
from importlib import resources
from pathlib import Path
from typing import Any

from stretto.core.optimistic_profiling import optimistic_sensitivity
from stretto.core.pollux_traces import is_traces_folder, load_pollux_profiles
from stretto.core.profiles import ModelProfile, ProfileBook, ResourceSensitivity

OWN_FORMAT = "stretto.profiles/v1"


def load_builtin_profiles() -> ProfileBook:
    models: dict[str, ModelProfile] = {}
    for entry in sorted(resources.files("stretto").joinpath("profiles").iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            models.update(_own_format(json.loads(entry.read_text()), entry.name).profiles)
    return ProfileBook(models, source="stretto built-in profiles")


def load_profile_book(path: Path | None) -> ProfileBook:
    """The built-ins for None; else Stretto's format, a Synergy or a Shockwave profile (file or folder), or
    Pollux's traces folder."""
    if path is None:
        return load_builtin_profiles()
    path = Path(path)
    if path.is_dir():
        for name in ("tacc_throughputs.json", "model_profiles.json"):
            if (path / name).exists():
                return load_profile_book(path / name)
        if is_traces_folder(path):
            return load_pollux_profiles(path)
        raise ValueError(
            f"{path}: no tacc_throughputs.json or model_profiles.json in this folder, nor Pollux application folders"
        )
    data = json.loads(path.read_text())
    if isinstance(data, dict) and data.get("format") == OWN_FORMAT:
        return _own_format(data, str(path))
    if isinstance(data, dict) and "profiles" in data and "axes" in data:
        return load_synergy_profiles(path)
    if isinstance(data, dict) and "v100" in data:
        return load_shockwave_profiles(path)
    raise ValueError(f"{path}: not a profile format Stretto knows ({OWN_FORMAT}, Synergy or Shockwave)")


def _sensitivity(spec: dict[str, Any]) -> ResourceSensitivity:
    if "optimistic" in spec:
        o = spec["optimistic"]
        return optimistic_sensitivity(
            cpu_points=[tuple(p) for p in o["cpu_points"]],
            samples_per_epoch=o["samples_per_epoch"],
            dataset_gib=o["dataset_gib"],
            storage_gib_s=o["storage_gib_s"],
            memory_gib_s_per_cpu=o["memory_gib_s_per_cpu"],
            proportional_cpu_per_gpu=o["proportional_cpu_per_gpu"],
            proportional_memory_gib_per_gpu=o["proportional_memory_gib_per_gpu"],
        )
    return ResourceSensitivity(
        cpu_per_gpu=tuple(spec["cpu_per_gpu"]),
        memory_gib_per_gpu=tuple(spec["memory_gib_per_gpu"]),
        relative_throughput=tuple(tuple(r) for r in spec["relative_throughput"]),
        ideal_cpu_per_gpu=spec["ideal_cpu_per_gpu"],
        ideal_memory_gib_per_gpu=spec["ideal_memory_gib_per_gpu"],
        ideal_speedup=spec["ideal_speedup"],
    )


def _own_format(data: dict[str, Any], where: str) -> ProfileBook:
    models: dict[str, ModelProfile] = {}
    for name, spec in data["models"].items():
        try:
            models[name] = ModelProfile(
                model=name,
                samples_per_second={
                    (int(t["batch_size"]), int(t["gpus"])): float(t["samples_per_second"]) for t in spec["throughput"]
                },
                default_batch_size=int(spec["default_batch_size"]),
                samples_per_epoch=spec.get("samples_per_epoch"),
                sensitivity=_sensitivity(spec["sensitivity"]) if spec.get("sensitivity") else None,
                scale_with_gpus=bool(spec.get("scale_with_gpus", True)),
                source=spec.get("source", data.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: model {name!r}: {err}") from None
    return ProfileBook(models, source=where)


def load_synergy_profiles(path: Path, variant: str = "models") -> ProfileBook:
    """Synergy's profiles; like its simulator, the one-GPU entry of each model serves every GPU count."""
    data = json.loads(Path(path).read_text())
    axes = data["axes"]
    models: dict[str, ModelProfile] = {}
    for entry in data["profiles"][variant].values():
        if entry["gpus"] != 1:
            continue
        sensitivity = ResourceSensitivity(
            cpu_per_gpu=tuple(float(c) for c in axes["cpu_per_gpu"]),
            memory_gib_per_gpu=tuple(float(m) for m in axes["mem_gb_per_gpu"]),
            relative_throughput=tuple(tuple(float(v) for v in row) for row in entry["tput"]),
            ideal_cpu_per_gpu=float(entry["ideal_cpu_per_gpu"]),
            ideal_memory_gib_per_gpu=float(entry["ideal_mem_gb_per_gpu"]),
            ideal_speedup=float(entry["speedup"]),
        )
        batch = int(entry["batch"])
        models[entry["model"]] = ModelProfile(
            model=entry["model"],
            samples_per_second={(batch, 1): batch / float(entry["iter_time_s"])},
            default_batch_size=batch,
            sensitivity=sensitivity,
            scale_with_gpus=False,
            source=f"{path} [{variant}]",
        )
    return ProfileBook(models, source=str(path))


def load_shockwave_profiles(path: Path, gpu_type: str = "v100") -> ProfileBook:
    """Shockwave's (Gavel's) isolated throughputs in steps/s; samples/s = steps/s × batch size."""
    path = Path(path)
    data = json.loads(path.read_text())[gpu_type]
    datasets_path = path.parent / "datasets.json"
    datasets = json.loads(datasets_path.read_text()) if datasets_path.exists() else None
    table: dict[str, dict[tuple[int, int], float]] = {}
    for key, value in data.items():
        job_type, gpus = ast.literal_eval(key)
        if "(batch size " not in job_type:
            continue  # A3C, CycleGAN: no batch size in the trace format
        model, _, rest = job_type.partition(" (batch size ")
        batch = int(rest.rstrip(")"))
        if float(value["null"]) <= 0:
            continue  # combination Shockwave never runs (e.g. too large for the GPU)
        table.setdefault(model, {})[(batch, int(gpus))] = float(value["null"]) * batch
    models = {}
    for model, rates in table.items():
        samples = None
        if datasets is not None:
            dataset = datasets["model_dataset"].get(model)
            samples = datasets["dataset_samples"].get(dataset) if dataset else None
        models[model] = ModelProfile(
            model=model,
            samples_per_second=rates,
            default_batch_size=min(bs for bs, _ in rates),
            samples_per_epoch=samples,
            source=f"{path} [{gpu_type}]",
        )
    return ProfileBook(models, source=str(path))
