"""`synergy-opt`: choose each job's CPU × memory cell and its node together, optimally (OR-Tools CP-SAT).

Synergy's Opt solves an MILP for the cells over cluster-wide CPU and memory totals and then only
checks that a *fractional* placement exists, so it is an upper bound, not a schedule. Here the
result is integral by construction:

1. The jobs to run are those the proportional packer can place in the policy's order (so the
   GPU side is always feasible, and the proportional placement is a known solution).
2. Jobs that must span nodes keep that proportional placement; their resources are taken out.
   So do jobs with running workers where workers cannot move (they are not re-placed).
3. The other jobs are grouped into classes (same profile, GPUs, GPUs per worker). An integer
   variable n[k, c, s] counts class-k jobs that run at cell c on node s. Constraints: every job
   of a class is placed once; per node, GPUs, CPUs and memory stay within what is free. Cells
   are the profile's grid cells that are at least as fast as the proportional share and not
   dominated (another cell needs no more CPU and memory and is at least as fast), plus the
   proportional point itself. Objective: maximise Σ GPUs × relative throughput.
4. Solved with CP-SAT on one worker with a time limit, hinted with the proportional solution;
   if it finds nothing in time the proportional placement is used. Quantities are scaled to
   integers (CPU and GiB in hundredths, throughput in thousandths).
"""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Placement, Shares
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.packers.ordered_placement import place_in_order
from stretto.core.packers.proportional import place_proportionally
from stretto.core.profiles import ModelProfile
from stretto.core.snapshots import ClusterSnapshot, JobState, WorkerPlacement

NAME = "synergy-opt"
RESOURCE_SCALE = 100
THROUGHPUT_SCALE = 1000


class SynergyOptArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    time_limit_s: float = Field(10.0, gt=0.0, le=600.0, description="CP-SAT time limit per round, seconds")


ARGS = SynergyOptArgs


def candidate_cells(profile: ModelProfile, prop_cpu: float, prop_memory: float) -> list[tuple[float, float, float]]:
    """(cpu/GPU, memory/GPU, relative throughput): the proportional point and the useful grid cells."""
    sens = profile.sensitivity
    if sens is None:
        return [(prop_cpu, prop_memory, 1.0)]
    base = sens.factor(prop_cpu, prop_memory)
    cells = [(prop_cpu, prop_memory, base)] + [cell for cell in sens.cells() if cell[2] >= base]
    keep = []
    for c, m, t in cells:
        dominated = any(
            (c2 <= c and m2 <= m and t2 >= t) and (c2, m2, t2) != (c, m, t) and (c2 < c or m2 < m or t2 > t)
            for c2, m2, t2 in cells
        )
        if not dominated and (c, m, t) not in keep:
            keep.append((c, m, t))
    return keep


class SynergyOptPacker:
    name: ClassVar[str] = NAME

    def __init__(self, args: SynergyOptArgs) -> None:
        self.args = args

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement:
        from ortools.sat.python import cp_model

        # 1. Who runs: the proportional packer's choice.
        hint_ledger, proportional = place_in_order(snapshot, shares, place_proportionally)
        if not proportional.allocations:
            return proportional
        jobs = {j.job_id: j for j in snapshot.jobs}
        ledger = NodeLedger.for_snapshot(snapshot)
        # 2. Jobs that span nodes keep their proportional placement.
        classes: dict[tuple[str, int, int], list[JobState]] = defaultdict(list)
        hint_node: dict[str, int] = {}
        for job_id, workers in hint_ledger.placed.items():
            job = jobs[job_id]
            nodes = {w.node for w in workers}
            if any(w.pinned for w in workers):
                as_placed = tuple(
                    WorkerPlacement(snapshot.nodes[w.node].name, w.gpu_indices, w.cpus, w.memory_gib) for w in workers
                )
                ledger.keep(job_id, as_placed, len(as_placed))
            elif len(nodes) > 1:
                plan = [(n, sum(1 for w in workers if w.node == n)) for n in sorted(nodes)]
                ledger.commit(
                    job_id,
                    plan,
                    gpus_per_worker=job.gpus_per_worker,
                    cpus=ledger.cpu_per_gpu * job.gpus_per_worker,
                    memory=ledger.memory_per_gpu * job.gpus_per_worker,
                )
            else:
                hint_node[job_id] = nodes.pop()
                gpus = sum(len(w.gpu_indices) for w in workers)
                classes[(job.profile.model, gpus, job.gpus_per_worker)].append(job)
        # 3. The class × cell × node model.
        n_nodes = len(snapshot.nodes)
        prop_cpu = snapshot.total_cpus / max(snapshot.total_gpus, 1)
        prop_memory = snapshot.total_memory_gib / max(snapshot.total_gpus, 1)
        model = cp_model.CpModel()
        free_gpus = ledger.free_gpus.copy()
        free_cpus = np.floor(ledger.free_cpus * RESOURCE_SCALE + 1e-6).astype(np.int64)
        free_mem = np.floor(ledger.free_memory * RESOURCE_SCALE + 1e-6).astype(np.int64)
        gpu_terms: list[list] = [[] for _ in range(n_nodes)]
        cpu_terms: list[list] = [[] for _ in range(n_nodes)]
        mem_terms: list[list] = [[] for _ in range(n_nodes)]
        objective = []
        variables: dict[tuple[tuple[str, int, int], int, int], cp_model.IntVar] = {}
        cells_of: dict[tuple[str, int, int], list[tuple[float, float, float]]] = {}
        for key, members in classes.items():
            _, gpus, _gpw = key
            cells = candidate_cells(members[0].profile, prop_cpu, prop_memory)
            cells_of[key] = cells
            hint_counts: dict[int, int] = defaultdict(int)
            for job in members:
                hint_counts[hint_node[job.job_id]] += 1
            class_vars = []
            for c, (cpu, mem, tput) in enumerate(cells):
                cpu_units = int(np.ceil(cpu * gpus * RESOURCE_SCALE - 1e-6))
                mem_units = int(np.ceil(mem * gpus * RESOURCE_SCALE - 1e-6))
                for s in range(n_nodes):
                    if free_gpus[s] < gpus or free_cpus[s] < cpu_units or free_mem[s] < mem_units:
                        continue
                    upper = int(min(len(members), free_gpus[s] // gpus))
                    v = model.new_int_var(0, upper, f"n_{len(variables)}")
                    variables[(key, c, s)] = v
                    class_vars.append(v)
                    gpu_terms[s].append(gpus * v)
                    cpu_terms[s].append(cpu_units * v)
                    mem_terms[s].append(mem_units * v)
                    objective.append(round(tput * gpus * THROUGHPUT_SCALE) * v)
                    model.add_hint(v, hint_counts.get(s, 0) if c == 0 else 0)
            model.add(sum(class_vars) == len(members))
        for s in range(n_nodes):
            if gpu_terms[s]:
                model.add(sum(gpu_terms[s]) <= int(free_gpus[s]))
                model.add(sum(cpu_terms[s]) <= int(free_cpus[s]))
                model.add(sum(mem_terms[s]) <= int(free_mem[s]))
        model.maximize(sum(objective))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = 1
        solver.parameters.random_seed = 0
        solver.parameters.max_time_in_seconds = self.args.time_limit_s
        status = solver.solve(model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return proportional
        # 4. Decode: hand out cells and nodes to the jobs of each class in the policy's order.
        for key, members in classes.items():
            queue = list(members)
            _, gpus, gpw = key
            for c, (cpu, mem, _) in enumerate(cells_of[key]):
                for s in range(n_nodes):
                    v = variables.get((key, c, s))
                    for _ in range(solver.value(v) if v is not None else 0):
                        job = queue.pop(0)
                        ledger.commit(
                            job.job_id,
                            [(s, gpus // gpw)],
                            gpus_per_worker=gpw,
                            cpus=cpu * gpw,
                            memory=mem * gpw,
                        )
        return Placement(ledger.allocations(), proportional.unplaced)


def build(args: SynergyOptArgs) -> SynergyOptPacker:
    return SynergyOptPacker(args)
