"""The round: every `roundSeconds` (or at once when a job arrives), snapshot → core → apply.

One loop per operator, and one leader across replicas (the Lease). The snapshot is built from the
watch-fed `ClusterCache`, never by listing; the loop calls `stretto.core.rounds.run_round` with the
configured plugins — exactly what `stretto simulate` calls — and hands each job's plan to the
`Reconciler`, which writes only what differs. Between rounds, jobs the watches marked dirty (a
worker bound, started or exited) are reconciled against the same plans. The policy state goes to
the `PolicyStore` after each round that changed it, and a replica that starts leading resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.rounds import RoundConfig, RoundPlugins, build_plugins, run_round
from stretto.core.snapshots import EMPTY_STATE, PolicyState
from stretto.operator import metrics
from stretto.operator.cache_priming import prime
from stretto.operator.cluster_cache import ClusterCache
from stretto.operator.config import ConfigSource
from stretto.operator.job_models import JobModels
from stretto.operator.leader import AlwaysLeader, LeaseElector
from stretto.operator.policy_store import PolicyStore, StoredRounds
from stretto.operator.reconciler import Reconciler
from stretto.operator.snapshot_builder import JobPlan, build_snapshot, job_key, plans_from_decision

log = logging.getLogger(__name__)
APPLY_PARALLELISM = 16


@dataclass(frozen=True)
class RoundReport:
    """One round in figures: what a platform team reads in the log, and what the benches print."""

    index: int
    jobs: int
    snapshot_s: float   # from the cache to the core's snapshot
    solve_s: float      # `run_round`: predict, share, pack
    apply_s: float      # every job reconciled against the plans
    writes: int         # API writes the round made (pods, Services, statuses, events, policy state)


def scheduler_key(config: RoundConfig) -> str:
    """The scheduler configuration as canonical JSON: policy state is kept per configuration."""
    return json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class RoundLoop:
    def __init__(self, cache: ClusterCache, reconciler: Reconciler, *, config: ConfigSource | None = None,
                 elector: LeaseElector | AlwaysLeader | None = None, store: PolicyStore | None = None,
                 namespaces: list[str] | None = None) -> None:
        self.cache, self.reconciler, self.store = cache, reconciler, store
        self.config = config or ConfigSource()
        self.elector = elector or AlwaysLeader()
        self.namespaces = namespaces or []
        self._apply_pool = ThreadPoolExecutor(max_workers=APPLY_PARALLELISM, thread_name_prefix="apply")
        self.book = load_builtin_profiles()
        self.models = JobModels(self.book)  # the jobs' learned profiles, refitted only when they change
        self.round_index = 0
        self.policy_state: PolicyState = EMPTY_STATE
        self.plans: Mapping[str, JobPlan] = MappingProxyType({})
        self.wakeup = asyncio.Event()   # a round now (a job arrived, left or changed)
        self.dirty = asyncio.Event()    # jobs to re-apply between rounds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._plugins: tuple[RoundConfig, RoundPlugins] | None = None
        self._leading = False
        self.last_round: RoundReport | None = None

    # -- leadership -----------------------------------------------------------------------------
    def take_over(self) -> None:
        """Start leading: bring the cache to the cluster (one list per kind) and resume the stored rounds."""
        prime(self.cache, self.namespaces)
        self._plugins = None
        config = self.config.refresh().scheduler
        stored = self.store.load() if self.store is not None else None
        if stored is not None and stored.scheduler == scheduler_key(config):
            self.policy_state, self.round_index = stored.state, max(self.round_index, stored.next_round)
            log.info("resumed the policy state of round %d (%d jobs) from the ConfigMap", stored.next_round - 1,
                     len(stored.state.get("job_ids") or ()))
        else:
            self.policy_state = EMPTY_STATE
        self._plugins = (config, build_plugins(config))

    def _plugins_for(self, config: RoundConfig) -> RoundPlugins:
        if self._plugins is None or self._plugins[0] != config:
            self._plugins = (config, build_plugins(config))
            self.policy_state = EMPTY_STATE  # another policy's state means nothing to this one
        return self._plugins[1]

    # -- one round ------------------------------------------------------------------------------
    def run_once(self) -> Mapping[str, JobPlan]:
        if not self.cache.primed:
            self.take_over()
        elif self.cache.relisted:  # a watch lost its place: deletions it missed are only in a fresh list
            self.cache.relisted = False
            prime(self.cache, self.namespaces)
        started, writes = time.perf_counter(), metrics.writes_so_far()
        config = self.config.refresh()
        plugins = self._plugins_for(config.scheduler)
        cached = self.cache.jobs()
        self.reconciler.forget_gone_jobs(cached)
        jobs = [self.reconciler.with_live_progress(job) for job in cached]
        snapshot = build_snapshot(now_s=time.time(), round_index=self.round_index,
                                  round_seconds=config.round_seconds, jobs=jobs, nodes=self.cache.nodes(),
                                  pods=self.cache.workers(), book=self.book, policy_state=self.policy_state,
                                  time_scale=config.time_scale, tenant_weights=config.tenant_weights,
                                  reserved=self.cache.reserved_by_node(), models=self.models)
        solve_started = time.perf_counter()
        decision = run_round(snapshot, plugins)
        solved = time.perf_counter()
        self.policy_state = decision.policy_state
        self.plans = plans_from_decision(decision, snapshot)
        round_index = self.round_index
        self.round_index += 1
        if self.store is not None:
            self.store.save(StoredRounds(scheduler_key(config.scheduler), self.round_index, self.policy_state))
        self.reconciler.set_plans(self.plans, round_index, config.checkpoint_notice_seconds, config.time_scale)
        timings = decision.timings
        metrics.SOLVER_SECONDS.observe(timings.predict_s + timings.share_s + timings.pack_s)
        self._observe(jobs, snapshot.jobs)
        # Jobs are independent (one lock each), so apply them side by side: what a round costs beyond the
        # CPU is API round trips. One job's failure is that job's: the others, and the bookkeeping, go on.
        self.cache.take_dirty()  # this pass covers every job
        keys = [job_key(j["metadata"]["namespace"], j["metadata"]["name"]) for j in cached]
        list(self._apply_pool.map(lambda key: self._apply_one(key, round_index, round_pass=True), keys))
        ended = time.perf_counter()
        metrics.ROUND_SECONDS.observe(ended - started)
        self.last_round = RoundReport(round_index, len(cached), solve_started - started, solved - solve_started,
                                      ended - solved, metrics.writes_so_far() - writes)
        log.info("round %d: %d jobs, snapshot %.3f s, solve %.3f s, apply %.3f s, %d writes", round_index,
                 len(cached), self.last_round.snapshot_s, self.last_round.solve_s, self.last_round.apply_s,
                 self.last_round.writes)
        return self.plans

    def apply_dirty(self) -> int:
        """Reconcile the jobs whose objects changed since they were last applied; returns how many."""
        keys = sorted(self.cache.take_dirty())
        list(self._apply_pool.map(lambda key: self._apply_one(key, self.round_index - 1), keys))
        return len(keys)

    def _apply_one(self, key: str, round_index: int, *, round_pass: bool = False) -> None:
        """Apply one job's plan. What the API refuses is already on the job (PlanRefused); anything else
        (a timeout, a bug) is logged here and retried next round, without failing the round."""
        try:
            self.reconciler.reconcile(key, round_pass=round_pass)
        except Exception:
            log.exception("round %d: applying the plan of %s failed; the other jobs go on", round_index, key)

    def _observe(self, jobs: list[dict[str, Any]], states: tuple[Any, ...]) -> None:
        phases: dict[str, int] = defaultdict(int)
        for job in jobs:
            phases[(job.get("status") or {}).get("phase", "Pending")] += 1
        for phase in ("Pending", "Running", "Scaling", "Suspended", "Succeeded", "Failed"):
            metrics.JOBS_BY_PHASE.labels(phase).set(phases.get(phase, 0))
        by_tenant: dict[str, int] = defaultdict(int)
        for state in states:
            by_tenant[state.owner] += self.plans[state.job_id].gpus
        for tenant, gpus in by_tenant.items():
            metrics.GPUS_BY_TENANT.labels(tenant).set(gpus)

    # -- the loop -------------------------------------------------------------------------------
    def poke(self) -> None:
        """Some job is dirty (callable from any thread: the cache calls it)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.dirty.set)

    def _lead(self) -> bool:
        leading = self.elector.try_lead()
        if leading and not self._leading:
            self.take_over()
        elif not leading:
            self.reconciler.clear_plans()  # a follower watches; only the leader's plans are applied
        self._leading = leading
        return leading

    def _renew_seconds(self) -> float | None:
        """How often the Lease is renewed between rounds (a third of its duration), None without one."""
        seconds = getattr(self.elector, "lease_seconds", None)
        return seconds / 3.0 if seconds else None

    async def forever(self) -> None:
        self._loop = asyncio.get_running_loop()
        next_round = next_renew = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                if self.wakeup.is_set() or now >= next_round:
                    self.wakeup.clear()  # before the round: an arrival during it wakes the next one
                    next_round = now + self.config.current.round_seconds
                    if await asyncio.to_thread(self._lead):
                        await asyncio.to_thread(self.run_once)
                    next_renew = time.monotonic() + (self._renew_seconds() or float("inf"))
                elif now >= next_renew:
                    was_leading = self._leading
                    if await asyncio.to_thread(self._lead) and not was_leading:
                        self.wakeup.set()  # a new leader decides now, not at the round a follower last timed
                    next_renew = time.monotonic() + (self._renew_seconds() or float("inf"))
                elif self.dirty.is_set():
                    self.dirty.clear()
                    if self._leading:
                        await asyncio.to_thread(self.apply_dirty)
            except Exception:  # keep rounds coming; the next one retries from the cache
                log.exception("round %d failed", self.round_index)
            # Rounds start every round_seconds (the round's own duration included), as the simulator's do.
            left = min(next_round, next_renew) - time.monotonic()
            if left > 0 and not self.wakeup.is_set() and not self.dirty.is_set():
                await _first(self.wakeup, self.dirty, timeout=left)


async def _first(*events: asyncio.Event, timeout: float) -> None:
    """Wait until any of `events` is set, or `timeout` seconds."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
