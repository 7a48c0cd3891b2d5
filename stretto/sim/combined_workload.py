"""The combined workload: Shockwave-style adaptive jobs with Synergy-style CPU/memory sensitivity.

Issue 4's third evaluation workload. Jobs come from `generate_shockwave` (Gavel's trace
generator as Shockwave uses it: Poisson arrivals, Pollux-skewed durations, 1/2/4/8 GPUs, GNS or
Accordion batch-size schedules), on Shockwave's V100 throughput table (batch size × GPUs). Each
model then gets the CPU × memory sensitivity matrix of a Synergy model (Synergy's
`model_profiles.json`, one-GPU entry, as Synergy's simulator uses it for every GPU count):

    ResNet-18      → res18        CPU-bound image pipeline: ideal 9 CPUs/GPU, ×2.4
    ResNet-50      → res50        mildly CPU-bound: ideal 4 CPUs/GPU, ×1.15
    Transformer    → transformer  insensitive: ideal 1 CPU, 20.8 GB per GPU
    LM             → lstm         insensitive: ideal 1 CPU, 20.8 GB per GPU
    Recommendation → m5           the most memory-hungry profile: ideal 6 CPUs, 187.5 GB per GPU, ×2.5
                                  (×1.5 with CPUs alone, ×2.0 at 125 GB): an embedding-table
                                  job whose input pipeline wants a large page cache

The matrix multiplies the Shockwave rate at every batch size (Synergy measured one batch size;
the sensitivity is taken as a property of the model's input pipeline). On a cluster at the
GPU-proportional share (e.g. `4x8,cpus=24,memory=500Gi`, 3 CPUs and 62.5 GiB per GPU) every
job runs at Shockwave's speed under the `proportional` packer, and a sensitivity-aware packer
can make CPU- and memory-hungry jobs up to 2.5× faster by taking CPUs and memory from the
insensitive ones.

    stretto simulate --workload combined:jobs=120,mean_interarrival_s=40 --seed 1 \\
        --cluster 4x8,cpus=24,memory=500Gi --profiles ../shared/data/peers

`--profiles` is the peers' folder (with `shockwave/` and `synergy/`); by default
`$STRETTO_PEERS`, then `../shared/data/peers` from the working directory and from the repository.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from pydantic import Field

from stretto.core.profile_loading import load_shockwave_profiles, load_synergy_profiles
from stretto.core.profiles import ProfileBook
from stretto.sim.generators import ShockwaveWorkloadArgs, generate_shockwave
from stretto.sim.workloads import WorkloadError, WorkloadJob

SENSITIVITY_OF = {
    "ResNet-18": "res18",
    "ResNet-50": "res50",
    "Transformer": "transformer",
    "LM": "lstm",
    "Recommendation": "m5",
}


class CombinedWorkloadArgs(ShockwaveWorkloadArgs):
    jobs: int = Field(120, ge=1, description="number of jobs")


def _peer_folders(path: Path | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    candidates = [Path(os.environ["STRETTO_PEERS"])] if os.environ.get("STRETTO_PEERS") else []
    candidates.append(Path.cwd() / ".." / "shared" / "data" / "peers")
    candidates.append(Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "peers")
    return candidates


def load_combined_book(path: Path | None = None) -> ProfileBook:
    """Shockwave's throughputs with Synergy's sensitivities, from the peers' folder (see module doc)."""
    for folder in _peer_folders(path):
        shockwave, synergy = folder / "shockwave" / "tacc_throughputs.json", folder / "synergy" / "model_profiles.json"
        if shockwave.exists() and synergy.exists():
            return combine_profiles(load_shockwave_profiles(shockwave), load_synergy_profiles(synergy))
    tried = ", ".join(str(f) for f in _peer_folders(path))
    raise WorkloadError(
        f"combined workload: no shockwave/tacc_throughputs.json and synergy/model_profiles.json in {tried}"
    )


def combine_profiles(
    shockwave: ProfileBook, synergy: ProfileBook, mapping: dict[str, str] | None = None
) -> ProfileBook:
    """Each Shockwave model of `mapping` (default `SENSITIVITY_OF`) with its Synergy model's sensitivity."""
    mapping = SENSITIVITY_OF if mapping is None else mapping
    models = {}
    for name, synergy_name in mapping.items():
        if name not in shockwave or synergy_name not in synergy:
            continue
        base = shockwave.get(name)
        models[name] = replace(
            base,
            sensitivity=synergy.get(synergy_name).sensitivity,
            source=f"{base.source}; sensitivity of {synergy_name!r} from {synergy.source}",
        )
    if not models:
        raise WorkloadError(f"combined workload: no model of {sorted(mapping)} in both profile books")
    return ProfileBook(models, source=f"combined: {shockwave.source} + {synergy.source}")


def generate_combined(args: CombinedWorkloadArgs, *, profiles: ProfileBook, seed: int) -> list[WorkloadJob]:
    """`generate_shockwave` on a combined book; every job's model carries a sensitivity."""
    if not any(p.sensitivity is not None for p in profiles.profiles.values()):
        raise WorkloadError(f"combined workload: {profiles.source} has no CPU/memory sensitivity (load_combined_book)")
    jobs = generate_shockwave(args, profiles=profiles, seed=seed)
    return [j.model_copy(update={"id": "c" + j.id[1:]}) for j in jobs]
