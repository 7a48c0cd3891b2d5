"""Faults and invariants for a workload played live on the dev cluster.

`FaultPlan` says how often to SIGKILL the operator (with two replicas: its leader, the Lease holder)
and the extender, and how often to restart kube-apiserver and etcd. `fault_schedule` spreads those
faults over the run at seeded random moments; `Chaos.tick` fires the ones that are due. A killed
process is started again at once with the same command line, as a supervisor (kubelet) would.

`check_invariants` reads one listing of a namespace's TrainingJobs and worker pods and names what
must never happen, whatever was killed: two live workers with one job and rank, more live workers
than the round allocated the job (`status.allocation.plannedWorkers`; workers asked to checkpoint
are on their way out and not counted; on two listings in a row, because the operator writes pods
and status in two steps), a worker whose TrainingJob is gone, one GPU of a node on two pods, and
progress going backwards.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stretto import contracts

log = logging.getLogger(__name__)

OPERATOR = "operator"
EXTENDER = "extender"
APISERVER = "kube-apiserver"
ETCD = "etcd"


@dataclass(frozen=True)
class FaultPlan:
    operator_kills: int = 30
    extender_kills: int = 5
    apiserver_restarts: int = 1
    etcd_restarts: int = 1

    @property
    def total(self) -> int:
        return self.operator_kills + self.extender_kills + self.apiserver_restarts + self.etcd_restarts


@dataclass(frozen=True)
class Fault:
    at_s: float     # seconds after the run starts
    target: str     # OPERATOR (the leader, with replicas), EXTENDER, APISERVER or ETCD


def fault_schedule(plan: FaultPlan, duration_s: float, seed: int, *, settle_s: float = 5.0) -> list[Fault]:
    """Every fault of `plan` at a uniform random moment in [settle_s, duration_s), in time order."""
    rng = random.Random(seed)
    targets = ([OPERATOR] * plan.operator_kills + [EXTENDER] * plan.extender_kills
               + [APISERVER] * plan.apiserver_restarts + [ETCD] * plan.etcd_restarts)
    span = max(1.0, duration_s - settle_s)
    return sorted((Fault(settle_s + rng.random() * span, t) for t in targets), key=lambda f: f.at_s)


@dataclass
class Chaos:
    """Fires a schedule's faults through `restart(name)`; `leader()` names the operator replica to kill."""

    schedule: list[Fault]
    restart: Callable[[str], object]
    leader: Callable[[], str]
    clock: Callable[[], float] = time.monotonic
    started: float | None = None
    fired: Counter[str] = field(default_factory=Counter)

    def tick(self) -> list[str]:
        """Fire the faults that are due; returns the processes restarted."""
        now = self.clock()
        if self.started is None:
            self.started = now
        hit = []
        while self.schedule and self.schedule[0].at_s <= now - self.started:
            fault = self.schedule.pop(0)
            name = self.leader() if fault.target == OPERATOR else fault.target
            try:
                self.restart(name)
            except Exception as error:  # the cluster mid-recovery: count the miss, try the next one
                log.warning("could not restart %s: %s", name, error)
                self.fired[f"{fault.target} (failed)"] += 1
                continue
            self.fired[fault.target] += 1
            hit.append(name)
        return hit

    @property
    def done(self) -> bool:
        return not self.schedule


@dataclass(frozen=True)
class Violation:
    kind: str       # duplicate, over-allocation, orphan, double-booked GPU, progress regression
    detail: str


def _live(pod: Mapping[str, Any]) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and (pod.get("status") or {}).get("phase") not in (
        "Succeeded", "Failed")


def _owner_uid(pod: Mapping[str, Any]) -> str | None:
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("kind") == contracts.TRAININGJOB_KIND:
            return str(ref.get("uid"))
    return None


@dataclass
class InvariantChecker:
    """Call `check` with each listing; it remembers what it needs between listings."""

    _samples: dict[str, float] = field(default_factory=dict)       # job uid -> furthest samplesDone seen
    _over: set[str] = field(default_factory=set)                     # job uids over allocation last time
    listings: int = 0

    def check(self, jobs: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> list[Violation]:
        self.listings += 1
        jobs, pods = list(jobs), [p for p in pods if _live(p)]
        by_uid = {str(j["metadata"]["uid"]): j for j in jobs}
        found: list[Violation] = []
        ranks = Counter((p["metadata"]["labels"].get(contracts.LABEL_JOB),
                         p["metadata"]["labels"].get(contracts.LABEL_WORKER_INDEX), _owner_uid(p)) for p in pods)
        found += [Violation("duplicate", f"job {job} rank {rank}: {n} live workers")
                  for (job, rank, _), n in ranks.items() if n > 1]
        found += [Violation("orphan", f"pod {p['metadata']['namespace']}/{p['metadata']['name']} has no TrainingJob")
                  for p in pods if _owner_uid(p) not in by_uid]
        found += self._over_allocation(by_uid, pods)
        found += self._double_booked(pods)
        found += self._regressions(jobs)
        return found

    def _over_allocation(self, by_uid: Mapping[str, Mapping[str, Any]],
                         pods: list[Mapping[str, Any]]) -> list[Violation]:
        staying = Counter(_owner_uid(p) for p in pods
                          if contracts.ANNOTATION_CHECKPOINT_REQUESTED not in (p["metadata"].get("annotations") or {}))
        over_now: dict[str, str] = {}
        for uid, n in staying.items():
            job = by_uid.get(uid or "")
            if job is None:
                continue
            planned = ((job.get("status") or {}).get("allocation") or {}).get("plannedWorkers")
            if planned is not None and n > int(planned):
                over_now[uid or ""] = f"job {job['metadata']['name']}: {n} live workers, {planned} allocated"
        persistent = sorted(set(over_now) & self._over)
        self._over = set(over_now)
        return [Violation("over-allocation", over_now[uid]) for uid in persistent]

    @staticmethod
    def _double_booked(pods: list[Mapping[str, Any]]) -> list[Violation]:
        holders: dict[tuple[str, int], list[str]] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            annotations = pod["metadata"].get("annotations") or {}
            if not node or contracts.ANNOTATION_GPU_MEMORY in annotations:  # a share may sit beside others
                continue
            for gpu in contracts.parse_gpu_ids(annotations.get(contracts.ANNOTATION_GPU_IDS)):
                holders.setdefault((node, gpu), []).append(pod["metadata"]["name"])
        return [Violation("double-booked GPU", f"{node} GPU {gpu}: {', '.join(names)}")
                for (node, gpu), names in sorted(holders.items()) if len(names) > 1]

    def _regressions(self, jobs: list[Mapping[str, Any]]) -> list[Violation]:
        found = []
        for job in jobs:
            uid = str(job["metadata"]["uid"])
            done = float((((job.get("status") or {}).get("progress") or {}).get("samplesDone")) or 0.0)
            before = self._samples.get(uid, 0.0)
            if done < before:
                found.append(Violation("progress regression",
                                       f"job {job['metadata']['name']}: {before:.0f} -> {done:.0f} samples"))
            self._samples[uid] = max(before, done)
        return found


def leader_from_lease(holder: str | None, replicas: Mapping[str, int]) -> str | None:
    """The replica (by name) whose pid the Lease's holder identity carries (`<host>-<pid>-<suffix>`)."""
    if not holder:
        return None
    try:
        pid = int(holder.rsplit("-", 2)[-2])
    except (IndexError, ValueError):
        return None
    return next((name for name, p in replicas.items() if p == pid), None)
