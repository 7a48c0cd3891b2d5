"""kopf wiring: the round loop, and level-triggered reconciles on TrainingJob and pod events.

No policy lives here. The round loop (`round_loop.RoundLoop`) decides every job's plan; events (a
job or one of its pods changed) call the same idempotent `reconciler.reconcile` against the latest
plans, and a new or changed job wakes the loop for an early round. Missing an event, or processing
one twice, is harmless. The operator adds no finalizer, so deleting a TrainingJob never waits for
the operator: its pods and Service go through garbage collection of their ownerReferences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import kopf

from stretto import contracts
from stretto.operator import reconciler
from stretto.operator.leader import DEFAULT_LEASE_SECONDS, AlwaysLeader, LeaseElector
from stretto.operator.progress_channel import channel_from_environment, operator_namespace
from stretto.operator.round_loop import RoundLoop

log = logging.getLogger(__name__)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="operator.stretto.io")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="operator.stretto.io", key="last-handled-configuration")
    settings.persistence.finalizer = "operator.stretto.io/finalizer"
    settings.posting.enabled = False  # events are written by stretto.operator.events, with reasons
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.request_timeout = 60
    channel, host, port = await asyncio.to_thread(channel_from_environment)
    await channel.start(host, port, shared=bool(os.environ.get("STRETTO_LEADER_ELECTION")))
    reconciler.set_progress_channel(channel)
    memo.progress = channel
    memo.rounds = RoundLoop(elector=_elector())
    memo.round_task = asyncio.create_task(memo.rounds.forever())


def _elector() -> LeaseElector | AlwaysLeader:
    """With STRETTO_LEADER_ELECTION (set by `--leader-election`), replicas share one round loop."""
    name = os.environ.get("STRETTO_LEADER_ELECTION")
    if not name:
        return AlwaysLeader()
    seconds = int(os.environ.get("STRETTO_LEASE_SECONDS") or DEFAULT_LEASE_SECONDS)
    return LeaseElector(operator_namespace(), name, lease_seconds=seconds)


@kopf.on.cleanup()
async def stop_rounds(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "round_task", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    channel = getattr(memo, "progress", None)
    if channel is not None:
        await channel.stop()


@kopf.on.event(contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL)
async def on_trainingjob_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    status = body.get("status") or {}
    new_or_changed = event.get("type") == "ADDED" or status.get("observedGeneration") != body.metadata.get(
        "generation")
    rounds = getattr(memo, "rounds", None)
    if rounds is not None and (new_or_changed or event.get("type") == "DELETED"):
        rounds.wakeup.set()  # an arrival, a departure or a new spec: decide now, not at the next tick
    if event.get("type") == "DELETED":
        return
    await asyncio.to_thread(reconciler.reconcile, dict(body))


@kopf.on.event("", "v1", "pods", labels={contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY})
async def on_worker_pod_event(body: kopf.Body, **_: Any) -> None:
    labels = body.get("metadata", {}).get("labels") or {}
    job_name = labels.get(contracts.LABEL_JOB)
    namespace = body.get("metadata", {}).get("namespace")
    if not job_name or not namespace:
        return
    job = await asyncio.to_thread(reconciler.get_job, namespace, job_name)
    if job is not None:
        await asyncio.to_thread(reconciler.reconcile, job)
