"""The round: every `roundSeconds` (or at once when a job arrives), snapshot → core → apply.

One loop per operator (one leader across replicas through kopf peering). It reads the cluster,
builds the core's snapshot, calls `stretto.core.rounds.run_round` with the configured plugins —
exactly what `stretto simulate` calls — and hands each job's plan to the reconciler, which applies
it idempotently. Handlers never decide anything; they only wake the loop or reconcile to the
latest plans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from types import MappingProxyType
from typing import Any

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.rounds import RoundConfig, RoundPlugins, build_plugins, run_round
from stretto.core.snapshots import EMPTY_STATE, PolicyState
from stretto.operator import kube, metrics, reconciler
from stretto.operator.config import ConfigSource
from stretto.operator.leader import AlwaysLeader, LeaseElector
from stretto.operator.snapshot_builder import JobPlan, build_snapshot, plans_from_decision

log = logging.getLogger(__name__)
APPLY_PARALLELISM = 8


class RoundLoop:
    def __init__(self, config: ConfigSource | None = None, elector: LeaseElector | AlwaysLeader | None = None) -> None:
        self.config = config or ConfigSource()
        self.elector = elector or AlwaysLeader()
        self._apply_pool = ThreadPoolExecutor(max_workers=APPLY_PARALLELISM, thread_name_prefix="apply")
        self.book = load_builtin_profiles()
        self.round_index = 0
        self.policy_state: PolicyState = EMPTY_STATE
        self.plans: Mapping[str, JobPlan] = MappingProxyType({})
        self.wakeup = asyncio.Event()
        self._plugins: tuple[RoundConfig, RoundPlugins] | None = None

    def _plugins_for(self, config: RoundConfig) -> RoundPlugins:
        if self._plugins is None or self._plugins[0] != config:
            self._plugins = (config, build_plugins(config))
            self.policy_state = EMPTY_STATE  # another policy's state means nothing to this one
        return self._plugins[1]

    def run_once(self) -> Mapping[str, JobPlan]:
        started = time.perf_counter()
        config = self.config.refresh()
        plugins = self._plugins_for(config.scheduler)
        listed = reconciler.list_jobs()
        reconciler.forget_gone_jobs(listed)
        jobs = [reconciler.with_live_progress(job) for job in listed]
        nodes = [kube.api_client().sanitize_for_serialization(n) for n in kube.core().list_node().items]
        selector = f"{contracts.LABEL_MANAGED_BY}={contracts.MANAGED_BY}"
        pods = [kube.api_client().sanitize_for_serialization(p)
                for p in kube.core().list_pod_for_all_namespaces(label_selector=selector).items]
        snapshot = build_snapshot(now_s=time.time(), round_index=self.round_index,
                                  round_seconds=config.round_seconds, jobs=jobs, nodes=nodes, pods=pods,
                                  book=self.book, policy_state=self.policy_state, time_scale=config.time_scale,
                                  tenant_weights=config.tenant_weights)
        decision = run_round(snapshot, plugins)
        self.policy_state = decision.policy_state
        self.plans = plans_from_decision(decision, snapshot)
        reconciler.set_plans(self.plans, self.round_index, config.checkpoint_notice_seconds, config.time_scale)
        self.round_index += 1
        timings = decision.timings
        metrics.SOLVER_SECONDS.observe(timings.predict_s + timings.share_s + timings.pack_s)
        self._observe(jobs, snapshot.jobs)
        # Jobs are independent (one lock each), so apply them side by side: the round's cost is API
        # round trips, not CPU. One job's failure is that job's: the others, and the bookkeeping, go on.
        round_index = self.round_index - 1
        list(self._apply_pool.map(lambda job: self._apply_one(job, round_index), jobs))
        metrics.ROUND_SECONDS.observe(time.perf_counter() - started)
        return self.plans

    @staticmethod
    def _apply_one(job: dict[str, Any], round_index: int) -> None:
        """Apply one job's plan. What the API refuses is already on the job (reconciler.PlanRefused);
        anything else (a timeout, a bug) is logged here and retried next round, without failing the round."""
        try:
            reconciler.reconcile(job, round_pass=True)
        except Exception:
            metadata = job.get("metadata", {})
            log.exception("round %d: applying the plan of %s/%s failed; the other jobs go on", round_index,
                          metadata.get("namespace"), metadata.get("name"))

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

    async def forever(self) -> None:
        while True:
            self.wakeup.clear()  # before the round: an arrival during it wakes the next one
            started = time.monotonic()
            try:
                if await asyncio.to_thread(self.elector.try_lead):
                    await asyncio.to_thread(self.run_once)
                else:
                    reconciler.clear_plans()  # a follower watches; only the leader's plans are applied
            except Exception:  # keep rounds coming; the next one retries from a fresh snapshot
                log.exception("round %d failed", self.round_index)
            # Rounds start every round_seconds (the round's own duration included), as the simulator's do.
            left = self.config.current.round_seconds - (time.monotonic() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout=max(0.0, left))


