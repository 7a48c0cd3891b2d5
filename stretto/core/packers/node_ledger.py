"""A packer's scratch copy of the cluster: what is still free on each node during one round.

Placement follows Synergy's rule for every packer: a job goes on one node if its whole demand
fits there, choosing the node with the fewest free GPUs (best fit, lowest index on ties);
otherwise its workers are spread over nodes with the fewest free GPUs that still fit a worker.
A gang is placed whole or not at all, and no node goes over its GPUs, CPUs or memory.

Where workers cannot move (`ClusterSnapshot.workers_can_move` is False: a live cluster, where a
pod never changes nodes), `keep` first books a running job's workers exactly where they are, with
the CPU and memory they were created with (pinned: reverting peers never lowers them), and the
packer places only the workers the job gains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stretto.core.snapshots import ClusterSnapshot, JobAllocation, NodeState, WorkerPlacement

EPS = 1e-9


@dataclass(slots=True)
class PlacedWorker:
    node: int
    gpu_indices: tuple[int, ...]
    cpus: float
    memory_gib: float
    pinned: bool = False  # a running worker kept where it is: its CPU and memory are fixed


class NodeLedger:
    def __init__(self, nodes: tuple[NodeState, ...]) -> None:
        self.nodes = nodes
        self.free_gpus = np.array([n.gpus for n in nodes], dtype=np.int64)
        self.free_cpus = np.array([n.cpus for n in nodes], dtype=float)
        self.free_memory = np.array([n.memory_gib for n in nodes], dtype=float)
        self.cpu_per_gpu = np.array([n.cpu_per_gpu for n in nodes], dtype=float)
        self.memory_per_gpu = np.array([n.memory_gib_per_gpu for n in nodes], dtype=float)
        self.max_node_cpus = float(max((n.cpus for n in nodes), default=0.0))
        self.max_node_memory = float(max((n.memory_gib for n in nodes), default=0.0))
        self.max_node_gpus = int(max((n.gpus for n in nodes), default=0))
        self._free_indices: list[list[int]] = [list(range(n.gpus)) for n in nodes]
        self._rank = np.arange(len(nodes), dtype=np.int64)
        self.total_free_gpus = int(self.free_gpus.sum())
        self.placed: dict[str, list[PlacedWorker]] = {}
        self.jobs_on_node: list[list[str]] = [[] for _ in nodes]
        self._node_index = {n.name: i for i, n in enumerate(nodes)}

    @classmethod
    def for_snapshot(cls, snapshot: ClusterSnapshot) -> NodeLedger:
        return cls(snapshot.nodes)

    # -- finding room ---------------------------------------------------------------------------
    def find(
        self, *, workers: int, gpus_per_worker: int, cpus: np.ndarray | float, memory: np.ndarray | float
    ) -> list[tuple[int, int]] | None:
        """(node, workers there) for a gang, or None. `cpus`/`memory` are per worker, per node or scalar."""
        gpus = workers * gpus_per_worker
        if gpus > self.total_free_gpus:
            return None
        cpus_arr = np.broadcast_to(np.asarray(cpus, dtype=float), self.free_gpus.shape)
        mem_arr = np.broadcast_to(np.asarray(memory, dtype=float), self.free_gpus.shape)
        whole = (
            (self.free_gpus >= gpus)
            & (self.free_cpus + EPS >= workers * cpus_arr)
            & (self.free_memory + EPS >= workers * mem_arr)
        )
        if whole.any():
            candidates = np.flatnonzero(whole)
            best = candidates[np.lexsort((candidates, self.free_gpus[candidates]))[0]]
            return [(int(best), workers)]
        with np.errstate(divide="ignore", invalid="ignore"):
            by_cpu = np.where(cpus_arr > 0, np.floor((self.free_cpus + EPS) / cpus_arr), np.inf)
            by_mem = np.where(mem_arr > 0, np.floor((self.free_memory + EPS) / mem_arr), np.inf)
        room = np.minimum(np.minimum(self.free_gpus // gpus_per_worker, by_cpu), by_mem)
        candidates = np.flatnonzero(room >= 1)
        if room[candidates].sum() < workers:
            return None
        plan: list[tuple[int, int]] = []
        left = workers
        for node in candidates[np.lexsort((candidates, self.free_gpus[candidates]))]:
            take = int(min(left, room[node]))
            plan.append((int(node), take))
            left -= take
            if left == 0:
                return plan
        return None

    # -- committing and changing ----------------------------------------------------------------
    def keep(self, job_id: str, running: tuple[WorkerPlacement, ...], limit: int) -> int:
        """Book up to `limit` of a job's running workers where they are; returns how many were kept.

        Workers are kept in order (the first ones, as a shrinking job loses its highest indices). A
        worker whose node is gone or no longer has its GPUs, CPUs or memory free is not kept.
        """
        kept: list[PlacedWorker] = self.placed.setdefault(job_id, [])
        for worker in running[:limit]:
            node = self._node_index.get(worker.node)
            if node is None:
                continue
            free = self._free_indices[node]
            wanted = [g for g in worker.gpu_indices if g in free]
            if len(wanted) < len(worker.gpu_indices):
                continue
            if self.free_cpus[node] + EPS < worker.cpus or self.free_memory[node] + EPS < worker.memory_gib:
                continue
            for g in wanted:
                free.remove(g)
            gpus = len(wanted)
            self.free_gpus[node] -= gpus
            self.total_free_gpus -= gpus
            self.free_cpus[node] -= worker.cpus
            self.free_memory[node] -= worker.memory_gib
            kept.append(PlacedWorker(node, tuple(wanted), worker.cpus, worker.memory_gib, pinned=True))
            if job_id not in self.jobs_on_node[node]:
                self.jobs_on_node[node].append(job_id)
        if not kept:
            del self.placed[job_id]
        return len(kept)

    def release(self, job_id: str) -> None:
        """Give back everything a job holds in this round's ledger."""
        for w in self.placed.pop(job_id, []):
            self._free_indices[w.node].extend(w.gpu_indices)
            self._free_indices[w.node].sort()
            self.free_gpus[w.node] += len(w.gpu_indices)
            self.total_free_gpus += len(w.gpu_indices)
            self.free_cpus[w.node] += w.cpus
            self.free_memory[w.node] += w.memory_gib
            if job_id in self.jobs_on_node[w.node]:
                self.jobs_on_node[w.node].remove(job_id)

    def commit(
        self,
        job_id: str,
        plan: list[tuple[int, int]],
        *,
        gpus_per_worker: int,
        cpus: np.ndarray | float,
        memory: np.ndarray | float,
    ) -> None:
        cpus_arr = np.broadcast_to(np.asarray(cpus, dtype=float), self.free_gpus.shape)
        mem_arr = np.broadcast_to(np.asarray(memory, dtype=float), self.free_gpus.shape)
        workers: list[PlacedWorker] = self.placed.setdefault(job_id, [])
        for node, count in plan:
            for _ in range(count):
                taken = tuple(self._free_indices[node][:gpus_per_worker])
                if len(taken) < gpus_per_worker:
                    raise RuntimeError(f"node {self.nodes[node].name} has no {gpus_per_worker} free GPUs")
                del self._free_indices[node][:gpus_per_worker]
                c, m = float(cpus_arr[node]), float(mem_arr[node])
                self.free_gpus[node] -= gpus_per_worker
                self.free_cpus[node] -= c
                self.free_memory[node] -= m
                if self.free_cpus[node] < -EPS or self.free_memory[node] < -EPS:
                    raise RuntimeError(f"node {self.nodes[node].name} over capacity")
                self.total_free_gpus -= gpus_per_worker
                workers.append(PlacedWorker(node, taken, c, m))
            if job_id not in self.jobs_on_node[node]:
                self.jobs_on_node[node].append(job_id)

    def shrink(self, job_id: str, *, cpus_per_gpu: np.ndarray, memory_per_gpu: np.ndarray) -> None:
        """Lower a placed job's CPU and memory to at most the given per-GPU amounts (never raises them)."""
        for w in self.placed[job_id]:
            if w.pinned:
                continue
            g = len(w.gpu_indices)
            new_c = min(w.cpus, float(cpus_per_gpu[w.node]) * g)
            new_m = min(w.memory_gib, float(memory_per_gpu[w.node]) * g)
            self.free_cpus[w.node] += w.cpus - new_c
            self.free_memory[w.node] += w.memory_gib - new_m
            w.cpus, w.memory_gib = new_c, new_m

    def allocations(self) -> tuple[JobAllocation, ...]:
        return tuple(
            JobAllocation(
                job_id,
                tuple(WorkerPlacement(self.nodes[w.node].name, w.gpu_indices, w.cpus, w.memory_gib) for w in workers),
            )
            for job_id, workers in self.placed.items()
        )
