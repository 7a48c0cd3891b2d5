"""The progress channel inside the operator: its HMAC key, per-job token Secrets, server and ledger.

Workers (through `stretto.sdk`) POST progress reports with their job's bearer token; the server
verifies the token against the job it claims (a job may only report for itself), checks the
report against the allocation the job really holds (`progress_reports.check_report`), and records
it in the ledger. The reconciler copies the ledger into `status.progress` (so a restarted operator
restores it) and the round loop feeds it to the core as each job's samples done and batch sizes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.operator import kube
from stretto.operator.progress_ledger import ProgressLedger
from stretto.operator.progress_reports import ProgressReport, ProgressResponse, job_context
from stretto.operator.progress_server import PROGRESS_PORT, build_progress_app, start_progress_server
from stretto.operator.progress_tokens import (
    OPERATOR_KEY_SECRET,
    TokenVerifier,
    generate_key,
    key_from_secret,
    key_secret,
    mint_token,
    progress_env,
    progress_secret,
)
from stretto.operator.snapshot_builder import current_allocations, job_key
from stretto.sdk.environment import PROGRESS_TOKEN_KEY, progress_secret_name

log = logging.getLogger(__name__)


def operator_namespace() -> str:
    return os.environ.get("STRETTO_NAMESPACE", "stretto-system")


def load_or_create_key(namespace: str) -> bytes:
    """The operator's HMAC key from its Secret, created on first start (racing replicas agree)."""
    core = kube.core()
    for _ in range(3):
        try:
            secret = kube.api_client().sanitize_for_serialization(
                core.read_namespaced_secret(OPERATOR_KEY_SECRET, namespace))
            key = key_from_secret(secret)
            if key:
                return key
            raise RuntimeError(f"Secret {namespace}/{OPERATOR_KEY_SECRET} has no usable key")
        except ApiException as error:
            if error.status != 404:
                raise
        try:
            core.create_namespaced_secret(namespace, key_secret(namespace, generate_key()))
        except ApiException as error:
            if error.status != 409:
                raise
    raise RuntimeError(f"could not read or create Secret {namespace}/{OPERATOR_KEY_SECRET}")


@dataclass
class ProgressChannel:
    key: bytes
    url: str
    ledger: ProgressLedger = field(default_factory=ProgressLedger)
    runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        self.book = load_builtin_profiles()

    # -- the job's side: its token Secret and its workers' environment ---------------------------
    def ensure_job_secret(self, job_body: dict[str, Any]) -> None:
        metadata = job_body["metadata"]
        namespace, name = metadata["namespace"], metadata["name"]
        wanted = mint_token(self.key, namespace=namespace, job=name, uid=metadata["uid"])
        try:
            kube.core().create_namespaced_secret(namespace, progress_secret(job_body, self.key))
            return
        except ApiException as error:
            if error.status != 409:
                raise
        existing = kube.core().read_namespaced_secret(progress_secret_name(name), namespace)
        token = base64.b64decode((existing.data or {}).get(PROGRESS_TOKEN_KEY, "")).decode()
        if token != wanted:  # the operator key was rotated: re-issue the job's token
            kube.core().replace_namespaced_secret(progress_secret_name(name), namespace,
                                                  progress_secret(job_body, self.key))

    def worker_env(self, job_name: str) -> list[dict[str, Any]]:
        return progress_env(job_name, self.url)

    # -- the server's side ---------------------------------------------------------------------
    def _uid_of(self, namespace: str, name: str) -> str | None:
        try:
            body = kube.custom().get_namespaced_custom_object(
                contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name)
        except ApiException:
            return None
        return str(body["metadata"]["uid"])

    def _ingest(self, report: ProgressReport) -> ProgressResponse | None:
        try:
            body = dict(kube.custom().get_namespaced_custom_object(
                contracts.GROUP, contracts.VERSION, report.namespace, contracts.TRAININGJOB_PLURAL, report.job))
        except ApiException:
            return None
        if (body.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        selector = f"{contracts.LABEL_JOB}={report.job}"
        pods = [kube.api_client().sanitize_for_serialization(p)
                for p in kube.core().list_namespaced_pod(report.namespace, label_selector=selector).items]
        allocation = current_allocations(pods).get(job_key(report.namespace, report.job))
        checkpoint = any(contracts.ANNOTATION_CHECKPOINT_REQUESTED in (p["metadata"].get("annotations") or {})
                         for p in pods)
        if self.ledger.get(report.namespace, report.job) is None:
            status = body.get("status") or {}
            self.ledger.restore(report.namespace, report.job, status.get("progress"), None)
        context = job_context(body, book=self.book, allocation=allocation, checkpoint_requested=checkpoint)
        return self.ledger.ingest(report, context)

    async def start(self, host: str, port: int) -> int:
        async def verify(namespace: str, job: str, token: str) -> bool:
            verifier = TokenVerifier(self.key, uid_of=self._uid_of)
            return await asyncio.to_thread(verifier, namespace, job, token)

        async def ingest(report: ProgressReport) -> ProgressResponse | None:
            return await asyncio.to_thread(self._ingest, report)

        self.runner, bound = await start_progress_server(build_progress_app(verify, ingest), host=host, port=port)
        log.info("progress server listening on %s:%d (workers report to %s)", host, bound, self.url)
        return bound

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def channel_from_environment() -> tuple[ProgressChannel, str, int]:
    """The channel as `stretto operator` flags set it up (through the environment kopf runs in)."""
    host = os.environ.get("STRETTO_PROGRESS_HOST", "0.0.0.0")
    port = int(os.environ.get("STRETTO_PROGRESS_PORT", str(PROGRESS_PORT)))
    url = os.environ.get("STRETTO_PROGRESS_URL") or f"http://stretto-operator.{operator_namespace()}:{port}"
    return ProgressChannel(key=load_or_create_key(operator_namespace()), url=url), host, port
