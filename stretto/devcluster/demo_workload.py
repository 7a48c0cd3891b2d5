"""The demo's one workload, two ways: as TrainingJobs for the live run and through `stretto simulate`'s simulator.

The workload is a JSON-lines file in Stretto's own format (`stretto.sim.workloads`); times in it are
training seconds. The live run compresses them: one wall second is `time_scale` training seconds (the
emulator's `--time-scale`), so a job is applied `arrival_s / time_scale` wall seconds after the start and
the operator's round of `round_seconds` wall seconds is a simulated round of `round_seconds x time_scale`.
Both runs use the same round plugins (the operator's defaults, `RoundConfig()`, unless the demo names a
policy or packer) and the same nodes (the dev cluster's fake node shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stretto import contracts
from stretto.core.profiles import ProfileBook
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.core.snapshots import NodeState
from stretto.devcluster.fake_nodes import NodeShape, node_name
from stretto.sim.batch_schedules import schedule_for
from stretto.sim.simulator import SimulationConfig, SimulationResult, Simulator
from stretto.sim.workloads import WorkloadError, WorkloadJob, read_workload

DEMO_WORKLOAD = Path(__file__).resolve().parents[2] / "manifests" / "demo" / "workload.jsonl"
SMALL_WORKLOAD = Path(__file__).resolve().parents[2] / "manifests" / "demo" / "workload-small.jsonl"
WORKER_IMAGE = "ghcr.io/example/trainer:latest"  # kwok runs nothing; the emulator plays the workers


@dataclass(frozen=True)
class Compression:
    """Wall time against training time: `time_scale` training seconds per wall second."""

    time_scale: float
    round_seconds: float  # the operator's round, wall seconds

    @property
    def simulated_round_seconds(self) -> float:
        return self.round_seconds * self.time_scale

    def wall(self, training_seconds: float) -> float:
        return training_seconds / self.time_scale

    def training(self, wall_seconds: float) -> float:
        return wall_seconds * self.time_scale


def load(path: Path, book: ProfileBook) -> list[WorkloadJob]:
    """The workload, checked to be one a TrainingJob can express exactly (whole epochs, explicit work)."""
    jobs = read_workload(path, book)
    for job in jobs:
        if job.epochs != int(job.epochs) or job.samples_per_epoch is None:
            raise WorkloadError(f"{path}: job {job.id}: a live run needs whole epochs and samples_per_epoch")
        if job.adaptation.schedule:
            raise WorkloadError(f"{path}: job {job.id}: explicit schedules have no TrainingJob form; name a mode")
        allowed = set(job.adaptation.batch_sizes) | {job.batch_size}
        planned = schedule_for(job.adaptation.mode, epochs=int(job.epochs), initial=job.batch_size,
                               batch_sizes=job.adaptation.batch_sizes)
        if any(size not in allowed for _, size in planned):
            raise WorkloadError(f"{path}: job {job.id}: its {job.adaptation.mode.value} schedule leaves batch_sizes")
    return sorted(jobs, key=lambda j: (j.arrival_s, j.id))


def training_job(job: WorkloadJob) -> dict[str, Any]:
    """The TrainingJob of one workload job; its name is the job's id (ids sort in arrival order)."""
    spec: dict[str, Any] = {
        "workers": {"min": job.workers.min, "max": job.workers.max},
        "gpusPerWorker": job.gpus_per_worker,
        "weight": job.weight,
        "work": {"epochs": int(job.epochs), "samplesPerEpoch": job.samples_per_epoch},
        "profile": {"model": job.model},
        "template": {"spec": {"containers": [{"name": "trainer", "image": WORKER_IMAGE}]}},
    }
    if job.tenant:
        spec["tenant"] = job.tenant
    adaptation = job.adaptation
    sizes = sorted({job.batch_size, *adaptation.batch_sizes})
    spec["adaptation"] = {"mode": adaptation.mode.value, "batchSizes": sizes, "initialBatchSize": job.batch_size}
    return {"apiVersion": contracts.API_VERSION, "kind": "TrainingJob",
            "metadata": {"name": job.id, "labels": {"stretto.io/demo": "workload"}}, "spec": spec}


def nodes(count: int, gpus_per_node: int, shape: NodeShape | None = None) -> tuple[NodeState, ...]:
    """The simulator's nodes for the dev cluster's fake ones (same GPUs, CPUs and memory)."""
    shape = shape or NodeShape(gpus=gpus_per_node)
    from stretto.api.quantity import parse_bytes

    memory_gib = parse_bytes(shape.memory) / 2**30
    return tuple(NodeState(name=node_name(i), gpus=gpus_per_node, cpus=float(shape.cpus), memory_gib=memory_gib)
                 for i in range(count))


def simulate(jobs: list[WorkloadJob], *, node_states: tuple[NodeState, ...], book: ProfileBook,
             compression: Compression, restore_overhead_s: float = 0.0,
             resize_overhead_s: float = 0.0, round_config: RoundConfig | None = None) -> SimulationResult:
    """`stretto simulate` on the same jobs, plugins and nodes, with the live run's round length.

    Completions count at the end of their round: the operator marks a job Succeeded at the first round
    after its work is done, which is when the live run sees it finish. Workers stay where they run, as
    pods do. `round_config` is the live operator's (default: the one default round).
    """
    config = SimulationConfig(round_seconds=compression.simulated_round_seconds,
                              restore_overhead_s=restore_overhead_s, resize_overhead_s=resize_overhead_s,
                              finish_at_round_end=True,
                              workers_can_move=False)
    plugins = build_plugins(round_config or RoundConfig())
    simulator = Simulator(workload=jobs, nodes=node_states, profiles=book, plugins=plugins, config=config)
    return simulator.run()


def wall_duration(jobs: list[WorkloadJob], result: SimulationResult, compression: Compression) -> float:
    """Wall seconds the live run should take, by the simulation (for time-outs)."""
    end = max(o.finish_s for o in result.outcomes) - min(j.arrival_s for j in jobs)
    return math.ceil(compression.wall(end))
