"""The progress channel inside the operator: its HMAC key, per-job token Secrets, server and ledger.

Workers (through `stretto.sdk`) POST progress reports with their job's bearer token; the server
verifies the token against the job it claims (a job may only report for itself), checks the
report against the allocation the job really holds and its job model (`progress_reports.check_report`),
records it in the ledger and writes it to the job's `status.progress`, with the job model that learned
from it in `status.jobModel` (`job_models`; one write for both), before it answers: a report the worker was
told is taken survives an operator killed a moment later (a failed write answers 503, and the
worker sends its cumulative progress again). The job and its workers are read from the operator's
watch-fed cache; the write is preconditioned on the resourceVersion read, so a stale read costs a
conflict and a fresh read, never a lost report. The round loop feeds the ledger to the core as each
job's samples done and batch sizes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from kubernetes.client.exceptions import ApiException

from stretto import contracts
from stretto.api.models import TrainingJob
from stretto.core.profile_loading import load_builtin_profiles
from stretto.operator import kube
from stretto.operator.cluster_cache import ClusterCache, Kind
from stretto.operator.job_models import JobModels, Measurement
from stretto.operator.progress_ledger import JobProgressRecord, ProgressLedger
from stretto.operator.progress_reports import ProgressReport, ProgressResponse, job_context, measurement_of
from stretto.operator.progress_server import PROGRESS_PORT, build_progress_app, start_progress_server
from stretto.operator.progress_tokens import (
    OPERATOR_KEY_SECRET,
    TokenVerifier,
    generate_key,
    key_from_secret,
    key_secret,
    progress_env,
    progress_secret,
)
from stretto.operator.snapshot_builder import current_allocations, job_key
from stretto.sdk.environment import progress_secret_name

log = logging.getLogger(__name__)
MAX_STORE_ATTEMPTS = 4  # a report stored over a fresh read after each conflict, then 503 (the worker retries)


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
    secrets_written: set[str] = field(default_factory=set)  # UIDs of the jobs whose token Secret this process wrote
    cache: ClusterCache | None = None  # the operator's watch-fed view; without it each report reads the API
    # One report of a job at a time from ledger to status, so an older record never lands last.
    _job_locks: defaultdict[tuple[str, str], threading.Lock] = field(
        default_factory=lambda: defaultdict(threading.Lock))

    def __post_init__(self) -> None:
        self.models = JobModels(load_builtin_profiles())

    # -- the job's side: its token Secret and its workers' environment ---------------------------
    def ensure_job_secret(self, job_body: dict[str, Any]) -> None:
        """Create the job's token Secret, or overwrite it once per operator process.

        The operator may write Secrets in a job's namespace but not read them (the chart grants
        create and update only), so an existing Secret, which may hold a token of a rotated key,
        is overwritten the first time this process needs it rather than compared.
        """
        metadata = job_body["metadata"]
        if metadata["uid"] in self.secrets_written:
            return
        namespace, name = metadata["namespace"], metadata["name"]
        body = progress_secret(job_body, self.key)
        try:
            kube.core().create_namespaced_secret(namespace, body)
        except ApiException as error:
            if error.status != 409:
                raise
            kube.core().replace_namespaced_secret(progress_secret_name(name), namespace, body)
        self.secrets_written.add(metadata["uid"])

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

    def _job_and_workers(self, namespace: str, name: str, *, fresh: bool) -> tuple[dict[str, Any], list[Any]] | None:
        """The job and its worker pods: from the watch-fed cache, or (`fresh`, or no cache) from the API."""
        cache = self.cache
        if cache is not None and not fresh:
            body = cache.job(job_key(namespace, name))
            if body is not None:
                return body, cache.workers_of(job_key(namespace, name), str(body["metadata"]["uid"]))
        try:
            body = dict(kube.custom().get_namespaced_custom_object(
                contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL, name))
        except ApiException:
            return None
        selector = f"{contracts.LABEL_JOB}={name}"
        pods = [kube.api_client().sanitize_for_serialization(p)
                for p in kube.core().list_namespaced_pod(namespace, label_selector=selector).items]
        return body, pods

    def _ingest(self, report: ProgressReport) -> ProgressResponse | None:
        """Check and record one report, and store it in the job's status before answering.

        The status patch carries the resourceVersion it was computed from: a job changed since (by a
        round, or by another replica storing a further report) answers 409, and the report is stored
        again over a fresh read, so a stale copy never overwrites further progress. The report is checked and
        recorded once; what the job model learns from it is applied to each read's model, so a conflict never
        loses another replica's observation nor counts this one twice."""
        response: ProgressResponse | None = None
        learned: Measurement | None = None
        for attempt in range(MAX_STORE_ATTEMPTS):
            found = self._job_and_workers(report.namespace, report.job, fresh=attempt > 0)
            if found is None:
                return None
            body, pods = found
            if (body.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                return None
            # What the job's status holds may be ahead of this replica's ledger: after a restart, or when
            # another replica behind the same Service stored the job's last report. Keep the furthest.
            uid = str(body["metadata"]["uid"])
            self.ledger.restore(report.namespace, report.job, (body.get("status") or {}).get("progress"), None, uid)
            with self._job_locks[(report.namespace, report.job)]:
                if response is None:
                    allocation = current_allocations(pods).get(job_key(report.namespace, report.job))
                    checkpoint = any(contracts.ANNOTATION_CHECKPOINT_REQUESTED in
                                     (p["metadata"].get("annotations") or {}) for p in pods)
                    context = job_context(body, models=self.models, allocation=allocation,
                                          checkpoint_requested=checkpoint)
                    response = self.ledger.ingest(report, context)
                    learned = measurement_of(report, response.accepted.samples_per_second, context)
                try:
                    self._persist(body, self.ledger.get(report.namespace, report.job, uid), learned)
                    return response
                except ApiException as error:
                    if error.status != 409 or attempt == MAX_STORE_ATTEMPTS - 1:
                        raise
        return None

    def _persist(self, body: dict[str, Any], record: JobProgressRecord | None, learned: Measurement | None) -> None:
        """Write the job's recorded progress, and its job model after `learned`, to its status, preconditioned
        on the uid and resourceVersion it was read at; raises (and the report is not acknowledged) when the
        write fails."""
        if record is None:
            return
        metadata, work = body["metadata"], body["spec"]["work"]
        status: dict[str, Any] = {"progress": record.progress_status(float(work["epochs"] * work["samplesPerEpoch"]))}
        if learned is not None:
            job = TrainingJob.model_validate(body)
            status |= self.models.status_fields(job, learned.learned_by(self.models.posterior(job, body)), learned)
        patch = {"metadata": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]},
                 "status": status}
        answer = kube.custom().patch_namespaced_custom_object_status(
            contracts.GROUP, contracts.VERSION, metadata["namespace"], contracts.TRAININGJOB_PLURAL,
            metadata["name"], patch)
        if self.cache is not None:
            self.cache.store(Kind.JOB, dict(answer))

    async def start(self, host: str, port: int, *, shared: bool = False) -> int:
        async def verify(namespace: str, job: str, token: str) -> bool:
            verifier = TokenVerifier(self.key, uid_of=self._uid_of)
            return await asyncio.to_thread(verifier, namespace, job, token)

        async def ingest(report: ProgressReport) -> ProgressResponse | None:
            return await asyncio.to_thread(self._ingest, report)

        self.runner, bound = await start_progress_server(build_progress_app(verify, ingest), host=host, port=port,
                                                         shared=shared)
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
