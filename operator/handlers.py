"""kopf wiring: watch TrainingJobs and their worker pods, and reconcile level-triggered.

No policy lives here. Events (a job or one of its pods changed) and a periodic resync both call the
same idempotent `reconciler.reconcile`; missing an event, or processing one twice, is harmless. The
operator adds no finalizer, so deleting a TrainingJob never waits for the operator: its pods and
Service go through garbage collection of their ownerReferences.
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

log = logging.getLogger(__name__)
RESYNC_SECONDS = float(os.environ.get("STRETTO_RESYNC_SECONDS", "5"))


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
    memo.resync = asyncio.create_task(_resync_forever())


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    task = getattr(memo, "resync", None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _resync_forever() -> None:
    """Reconcile every job periodically: covers restarts, missed events, and pods deleted by hand."""
    while True:
        try:
            for job in await asyncio.to_thread(reconciler.list_jobs):
                await asyncio.to_thread(reconciler.reconcile, job)
        except Exception:  # keep the loop alive; the next pass retries
            log.exception("resync pass failed")
        await asyncio.sleep(RESYNC_SECONDS)


@kopf.on.event(contracts.GROUP, contracts.VERSION, contracts.TRAININGJOB_PLURAL)
async def on_trainingjob_event(event: dict[str, Any], body: kopf.Body, **_: Any) -> None:
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
