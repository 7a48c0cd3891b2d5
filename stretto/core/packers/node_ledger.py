"""A packer's scratch copy of the cluster: what is still free on each node during one round.

Placement follows Synergy's rule for every packer: a job goes on one node if its whole demand
fits there, choosing the node with the fewest free GPUs (best fit, lowest index on ties);
otherwise its workers are spread over nodes with the fewest free GPUs that still fit a worker.
A gang is placed whole or not at all, and no node goes over its GPUs, CPUs or memory.

Where workers cannot move (`ClusterSnapshot.workers_can_move` is False: a live cluster, where a
pod never changes nodes), `keep` first books a running job's workers exactly where they are, with
the CPU and memory they were created with (pinned: reverting peers never lowers them), and the
packer places only the workers the job gains.

A GPU may hold two single-GPU jobs (`join`, used by the opt-in GPU sharing of
`stretto.core.packers.gpu_sharing`): both workers then name each other in `shared_with`, each
counts 1/2 of the GPU, and each has half the CPU and memory it would have on a whole GPU. A shared
GPU is not free while either job holds it; no GPU ever holds more than two jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

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
    shared_with: str | None = None  # the other job on this worker's (single) GPU

    @property
    def share(self) -> float:
        """GPUs' worth: a shared GPU is half each job's."""
        return len(self.gpu_indices) * (0.5 if self.shared_with is not None else 1.0)


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
            if self.free_cpus[node] + EPS < worker.cpus or self.free_memory[node] + EPS < worker.memory_gib:
                continue
            partner = self._sharing_partner(node, worker)
            if partner is not None:
                # The other half of a GPU shared last round, whose partner was kept first: share it again.
                partner.shared_with, shared_with = job_id, worker.shared_with
            else:
                free = self._free_indices[node]
                if any(g not in free for g in worker.gpu_indices):
                    continue
                for g in worker.gpu_indices:
                    free.remove(g)
                self.free_gpus[node] -= len(worker.gpu_indices)
                self.total_free_gpus -= len(worker.gpu_indices)
                shared_with = None
            self.free_cpus[node] -= worker.cpus
            self.free_memory[node] -= worker.memory_gib
            indices = tuple(worker.gpu_indices)
            kept.append(PlacedWorker(node, indices, worker.cpus, worker.memory_gib, True, shared_with))
            if job_id not in self.jobs_on_node[node]:
                self.jobs_on_node[node].append(job_id)
        if not kept:
            del self.placed[job_id]
        return len(kept)

    def _sharing_partner(self, node: int, worker: WorkerPlacement) -> PlacedWorker | None:
        """The kept worker of `worker`'s partner on the same GPU, if it holds that GPU alone."""
        if worker.shared_with is None or len(worker.gpu_indices) != 1:
            return None
        for other in self.placed.get(worker.shared_with, []):
            if other.node == node and other.gpu_indices == worker.gpu_indices and other.shared_with is None:
                return other
        return None

    def release(self, job_id: str) -> None:
        """Give back everything a job holds in this round's ledger (a shared GPU stays with its partner)."""
        for w in self.placed.pop(job_id, []):
            if w.shared_with is not None:
                for other in self.placed.get(w.shared_with, []):
                    if other.node == w.node and other.gpu_indices == w.gpu_indices:
                        other.shared_with = None
            else:
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
            g = w.share
            new_c = min(w.cpus, float(cpus_per_gpu[w.node]) * g)
            new_m = min(w.memory_gib, float(memory_per_gpu[w.node]) * g)
            self.free_cpus[w.node] += w.cpus - new_c
            self.free_memory[w.node] += w.memory_gib - new_m
            w.cpus, w.memory_gib = new_c, new_m

    # -- sharing a GPU ---------------------------------------------------------------------------
    def single(self, job_id: str) -> PlacedWorker | None:
        """The job's worker if the job holds exactly one worker on one whole, unshared GPU."""
        workers = self.placed.get(job_id, [])
        if len(workers) == 1 and len(workers[0].gpu_indices) == 1 and workers[0].shared_with is None:
            return workers[0]
        return None

    def room_to_join(self, host_id: str) -> tuple[float, float]:
        """CPUs and memory a guest can have on the host's GPU: the node's free part plus the half the host gives up."""
        host = self.placed[host_id][0]
        give = 0.0 if host.pinned else 0.5
        return (
            float(self.free_cpus[host.node]) + give * host.cpus,
            float(self.free_memory[host.node]) + give * host.memory_gib,
        )

    def join(self, guest_id: str, host_id: str, *, cpus: float, memory: float) -> None:
        """Put `guest_id` on the GPU of `host_id` (a `single` job): the host keeps half its CPU and memory
        (all of it if pinned) and the guest gets `cpus` and `memory` (half of its whole-GPU demand)."""
        host = self.single(host_id)
        if host is None or guest_id in self.placed:
            raise RuntimeError(f"{guest_id} cannot join {host_id}: not a lone single-GPU worker, or already placed")
        if not host.pinned:
            self.free_cpus[host.node] += host.cpus / 2
            self.free_memory[host.node] += host.memory_gib / 2
            host.cpus, host.memory_gib = host.cpus / 2, host.memory_gib / 2
        self.free_cpus[host.node] -= cpus
        self.free_memory[host.node] -= memory
        if self.free_cpus[host.node] < -EPS or self.free_memory[host.node] < -EPS:
            raise RuntimeError(f"node {self.nodes[host.node].name} over capacity")
        host.shared_with = guest_id
        self.placed[guest_id] = [PlacedWorker(host.node, host.gpu_indices, cpus, memory, shared_with=host_id)]
        self.jobs_on_node[host.node].append(guest_id)

    def checkpoint(self) -> tuple:
        """Everything `restore` needs to undo what follows (a sharing attempt that did not pay off)."""
        return (
            self.free_gpus.copy(),
            self.free_cpus.copy(),
            self.free_memory.copy(),
            [list(f) for f in self._free_indices],
            self.total_free_gpus,
            {j: [replace(w) for w in ws] for j, ws in self.placed.items()},
            [list(js) for js in self.jobs_on_node],
        )

    def restore(self, state: tuple) -> None:
        gpus, cpus, memory, indices, total, placed, on_node = state
        self.free_gpus, self.free_cpus, self.free_memory = gpus.copy(), cpus.copy(), memory.copy()
        self._free_indices = [list(f) for f in indices]
        self.total_free_gpus = total
        self.placed = {j: [replace(w) for w in ws] for j, ws in placed.items()}
        self.jobs_on_node = [list(js) for js in on_node]

    def allocations(self) -> tuple[JobAllocation, ...]:
        return tuple(
            JobAllocation(
                job_id,
                tuple(
                    WorkerPlacement(
                        self.nodes[w.node].name,
                        w.gpu_indices,
                        w.cpus,
                        w.memory_gib,
                        gpu_fraction=w.share / len(w.gpu_indices),
                        shared_with=w.shared_with,
                    )
                    for w in workers
                ),
            )
            for job_id, workers in self.placed.items()
        )
