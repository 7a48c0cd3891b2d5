"""A workload played live while Stretto's processes and the control plane are killed, and the extender fuzzed.

`run_chaos` starts the stack on a dev cluster (the extender, one or two operator replicas, the training
emulator), applies the workload on schedule and, until every job has Succeeded or time runs out:
fires the `FaultPlan`'s faults (`chaos.Chaos`), checks the invariants every `poll_s` seconds
(`chaos.InvariantChecker`), and, in a thread beside it, sends the extender fuzz in chunks
(`extender_fuzz`). The outcome carries everything `bench/bench_chaos.py` and the CI test judge.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.devcluster import chaos, extender_fuzz
from stretto.devcluster.cluster import STRETTO_NAMESPACE, ClusterState, DevCluster
from stretto.devcluster.demo import clear_namespace
from stretto.devcluster.demo_workload import Compression, load, nodes, simulate
from stretto.devcluster.live_run import LiveRun
from stretto.devcluster.rest import ApiError, RestClient
from stretto.devcluster.stretto_stack import (
    EMULATOR_START_SECONDS,
    LEADER_LEASE,
    StackSettings,
    operator_names,
    start_all,
)
from stretto.sim.metrics import summarise

log = logging.getLogger(__name__)
NAMESPACE = "stretto-chaos"
RESTART_WINDOW_S = 15.0  # after a planned extender kill, a refused connection is that kill's doing
IN_FLIGHT_S = 5.0        # and so is a reset of a request sent this long before it (answered in < 1 s)


@dataclass(frozen=True)
class ChaosSettings:
    workload: Path
    plan: chaos.FaultPlan
    seed: int = 0
    replicas: int = 1
    compression: Compression = field(default_factory=lambda: Compression(time_scale=30.0, round_seconds=3.0))
    fuzz_requests: int = 0
    fuzz_chunk: int = 25
    poll_s: float = 2.0
    timeout_s: float = 1200.0
    faults_over: float = 0.8  # faults are spread over this fraction of the simulator's expected run


@dataclass
class ChaosOutcome:
    jobs: int = 0
    succeeded: int = 0
    phases: dict[str, str] = field(default_factory=dict)
    violations: list[chaos.Violation] = field(default_factory=list)
    listings: int = 0
    fired: dict[str, int] = field(default_factory=dict)
    makespan_s: float | None = None       # training seconds, first arrival to last finish
    avg_jct_s: float | None = None
    wall_s: float = 0.0
    fuzz: extender_fuzz.FuzzReport = field(default_factory=extender_fuzz.FuzzReport)
    fuzz_disallowed: list[str] = field(default_factory=list)
    fuzz_unanswered_while_killed: int = 0      # sent while a planned extender restart was under way
    fuzz_unanswered_otherwise: list[str] = field(default_factory=list)   # a crash, or a hang
    log_bytes_per_bad_request: float | None = None

    @property
    def clean(self) -> bool:
        return self.succeeded == self.jobs and not self.violations


def _listing(rest: RestClient, namespace: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    jobs = rest.get(f"/apis/{contracts.API_VERSION}/namespaces/{namespace}/{contracts.TRAININGJOB_PLURAL}")
    selector = urllib.parse.quote(f"{contracts.LABEL_ROLE}={contracts.ROLE_WORKER}")
    pods = rest.get(f"/api/v1/namespaces/{namespace}/pods?labelSelector={selector}")
    return jobs.get("items", []), pods.get("items", [])


class _Fuzzer(threading.Thread):
    """Sends the fuzz in chunks while the workload plays; measures the extender's log per chunk."""

    def __init__(self, cluster: DevCluster, state: ClusterState, settings: ChaosSettings,
                 extender_restarts: list[float]) -> None:
        super().__init__(name="extender-fuzz", daemon=True)
        self.cluster, self.state, self.settings = cluster, state, settings
        self.restarts = extender_restarts
        self.report = extender_fuzz.FuzzReport()
        self.log_growth: list[tuple[int, int]] = []  # (bytes, requests) of chunks with no extender restart
        self.stop = threading.Event()

    def _pending(self) -> list[dict[str, Any]]:
        try:
            _, pods = _listing(self.cluster.rest(self.state), NAMESPACE)
        except (ApiError, OSError):
            return []
        return [p for p in pods if not (p.get("spec") or {}).get("nodeName")]

    def run(self) -> None:
        log_path = Path(self.cluster.log_dir) / "extender.log"
        left, chunk_index = self.settings.fuzz_requests, 0
        while left > 0 and not self.stop.is_set():
            size = min(self.settings.fuzz_chunk, left)
            batch = extender_fuzz.requests(size, self.settings.seed * 1000 + chunk_index, nodes=self.state.nodes,
                                           pending=self._pending())
            started, before = time.monotonic(), log_path.stat().st_size if log_path.exists() else 0
            part = extender_fuzz.send("127.0.0.1", self.state.extender_port, batch)
            after = log_path.stat().st_size if log_path.exists() else 0
            if not any(started - 1.0 <= t for t in self.restarts) and after >= before:
                self.log_growth.append((after - before, part.sent))
            self._merge(part)
            left -= size
            chunk_index += 1
            self.stop.wait(1.0)

    def _merge(self, part: extender_fuzz.FuzzReport) -> None:
        r = self.report
        r.sent += part.sent
        for kind, n in part.by_kind.items():
            r.by_kind[kind] = r.by_kind.get(kind, 0) + n
        r.server_errors += part.server_errors
        r.dropped += part.dropped
        r.slowest_s = max(r.slowest_s, part.slowest_s)
        r.slow += part.slow
        r.accepted_binds += part.accepted_binds


def run_chaos(cluster: DevCluster, state: ClusterState, settings: ChaosSettings,
              progress: Any = print) -> ChaosOutcome:
    book = load_builtin_profiles()
    jobs = load(settings.workload, book)
    compression = settings.compression
    node_states = nodes(len(state.nodes), state.gpus_per_node)
    rest = cluster.rest(state)
    clear_namespace(rest, NAMESPACE)
    stack = StackSettings(compression)
    start_all(cluster, state, stack, [NAMESPACE], progress=progress, replicas=settings.replicas)
    reference = simulate(jobs, node_states=node_states, book=book, compression=compression)
    expected_wall = max(o.finish_s for o in reference.outcomes) / compression.time_scale
    schedule = chaos.fault_schedule(settings.plan, settings.faults_over * expected_wall, settings.seed)
    replicas = operator_names(settings.replicas)
    extender_restarts: list[float] = []

    def restart(name: str) -> None:
        if name == chaos.EXTENDER:
            extender_restarts.append(time.monotonic())
        progress(f"chaos: restarting {name}")
        cluster.restart(name)

    def leader() -> str:
        if settings.replicas == 1:
            return replicas[0]
        try:
            lease = rest.get(f"/apis/coordination.k8s.io/v1/namespaces/{STRETTO_NAMESPACE}/leases/{LEADER_LEASE}")
        except (ApiError, OSError):
            return replicas[0]
        pids = {name: cluster.load_state().processes[name].pid for name in replicas}  # type: ignore[union-attr]
        return chaos.leader_from_lease((lease.get("spec") or {}).get("holderIdentity"), pids) or replicas[0]

    faults = chaos.Chaos(schedule, restart=restart, leader=leader)
    checker = chaos.InvariantChecker()
    outcome = ChaosOutcome(jobs=len(jobs))
    run = LiveRun(rest, NAMESPACE, jobs, compression, total_gpus=sum(n.gpus for n in node_states),
                  total_cpus=sum(n.cpus for n in node_states),
                  total_memory_gib=sum(n.memory_gib for n in node_states))
    fuzzer = _Fuzzer(cluster, state, settings, extender_restarts)
    time.sleep(EMULATOR_START_SECONDS)
    started = time.monotonic()
    if settings.fuzz_requests:
        fuzzer.start()
    last_poll = 0.0
    try:
        while not run.done and time.monotonic() - started < settings.timeout_s:
            faults.tick()
            try:
                run.step()
                if time.monotonic() - last_poll >= settings.poll_s:
                    last_poll = time.monotonic()
                    outcome.violations += checker.check(*_listing(rest, NAMESPACE))
            except (ApiError, OSError) as error:  # the API server restarting: the next step retries
                log.info("API unavailable for a moment: %s", error)
            time.sleep(0.2)
    finally:
        fuzzer.stop.set()
        if fuzzer.is_alive():
            fuzzer.join(120)
    outcome.wall_s = time.monotonic() - started
    outcome.listings = checker.listings
    outcome.fired = dict(faults.fired)
    outcome.phases = {r.job.id: str(r.status.get("phase")) for r in run.records.values()}
    outcome.succeeded = sum(1 for p in outcome.phases.values() if p == "Succeeded")
    if run.done:
        summary = summarise(run.result({o.job_id: o.isolated_s for o in reference.outcomes}))
        outcome.makespan_s, outcome.avg_jct_s = summary.makespan_s, summary.avg_jct_s
    outcome.fuzz = fuzzer.report
    for sent_at, what in fuzzer.report.dropped:
        if any(-IN_FLIGHT_S <= sent_at - t <= RESTART_WINDOW_S for t in extender_restarts):
            outcome.fuzz_unanswered_while_killed += 1
        else:
            outcome.fuzz_unanswered_otherwise.append(what)

    def pod_of(namespace: str, name: str) -> dict[str, Any]:
        try:
            return dict(rest.get(f"/api/v1/namespaces/{namespace}/pods/{name}"))
        except ApiError as error:
            if error.status == 404:  # finished and gone: judged while it lived, by the invariants
                return {"metadata": {}}
            raise

    outcome.fuzz_disallowed = extender_fuzz.disallowed_binds(fuzzer.report, pod_of)
    measured = sum(n for _, n in fuzzer.log_growth)
    if measured:
        outcome.log_bytes_per_bad_request = sum(b for b, _ in fuzzer.log_growth) / measured
    return outcome
