"""kopf wiring: the watches feed the cluster cache; the round loop does everything else.

No policy lives here and no handler calls the API. kopf's watch streams (TrainingJobs, the worker
pods and Services Stretto manages, nodes, and the node room other pods take) go into the
`ClusterCache` held in kopf's memo, which marks the job a change belongs to dirty; a new, changed or
deleted job wakes the loop for an early round. Missing an event, or processing one twice, is
harmless: the loop primes the cache with one list per kind when it starts leading, and every pass is
level-triggered. The operator adds no finalizer, so deleting a TrainingJob never waits for the
operator: its pods and Service go through garbage collection of their ownerReferences.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import kopf

from stretto import contracts
from stretto.operator.cluster_cache import ClusterCache, Kind
from stretto.operator.events import EventRecorder
from stretto.operator.leader import DEFAULT_LEASE_SECONDS, AlwaysLeader, LeaseElector
from stretto.operator.policy_store import PolicyStore
from stretto.operator.progress_channel import channel_from_environment, operator_namespace
from stretto.operator.reconciler import Reconciler
from stretto.operator.round_loop import RoundLoop

log = logging.getLogger(__name__)
MANAGED = {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}
FEEDERS = ("on_trainingjob_event", "on_worker_pod_event", "on_other_pod_event", "on_service_event", "on_node_event")


class QuietFeeders(logging.Filter):
    """Drops kopf's "Handler '...' succeeded." for the handlers that only feed the cache: one line per
    watch event (thousands in a round that starts 2,000 workers) says nothing. Their failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.endswith("succeeded.") and any(f"'{name}'" in message for name in FEEDERS))


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
    if not any(isinstance(f, QuietFeeders) for f in logging.getLogger("kopf.objects").filters):
        logging.getLogger("kopf.objects").addFilter(QuietFeeders())
    channel, host, port = await asyncio.to_thread(channel_from_environment)
    await channel.start(host, port, shared=bool(os.environ.get("STRETTO_LEADER_ELECTION")))
    memo.progress = channel
    memo.cache = ClusterCache()
    channel.cache = memo.cache  # reports read the job and its workers from the watches, not the API
    elector = _elector()
    identity = getattr(elector, "identity", f"{socket.gethostname()}-{os.getpid()}")
    memo.rounds = RoundLoop(memo.cache, Reconciler(memo.cache, channel, EventRecorder()), elector=elector,
                            store=PolicyStore(operator_namespace(), identity), namespaces=_namespaces())
    memo.cache.on_dirty = memo.rounds.poke
    memo.round_task = asyncio.create_task(memo.rounds.forever())


def _namespaces() -> list[str]:
    return [n for n in os.environ.get("STRETTO_WATCH_NAMESPACES", "").split(",") if n]


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


def _observe(memo: kopf.Memo, kind: Kind, event: dict[str, Any]) -> None:
    cache: ClusterCache | None = getattr(memo, "cache", None)
    body = event.get("object")
    if cache is not None and isinstance(body, dict):
        cache.observe(kind, event.get("type"), body)  # None: an object of kopf's (re-)listing


@kopf.on.event(contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL)
async def on_trainingjob_event(event: dict[str, Any], body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    _observe(memo, Kind.JOB, event)
    status = body.get("status") or {}
    new_or_changed = event.get("type") == "ADDED" or status.get("observedGeneration") != body.metadata.get(
        "generation")
    rounds = getattr(memo, "rounds", None)
    if rounds is not None and (new_or_changed or event.get("type") == "DELETED"):
        rounds.wakeup.set()  # an arrival, a departure or a new spec: decide now, not at the next tick


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def on_worker_pod_event(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe(memo, Kind.POD, event)


def _not_managed(labels: kopf.Labels, **_: Any) -> bool:
    return labels.get(contracts.LABEL_MANAGED_BY) != contracts.MANAGED_BY


@kopf.on.event("", "v1", "pods", when=_not_managed)
async def on_other_pod_event(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """The node room other pods take (a node daemon, the chart's own pods): the round plans around it."""
    cache: ClusterCache | None = getattr(memo, "cache", None)
    body = event.get("object")
    if cache is not None and isinstance(body, dict):
        cache.observe_other_pod(event.get("type"), body)


@kopf.on.event("", "v1", "services", labels=MANAGED)
async def on_service_event(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe(memo, Kind.SERVICE, event)


@kopf.on.event("", "v1", "nodes")
async def on_node_event(event: dict[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe(memo, Kind.NODE, event)
