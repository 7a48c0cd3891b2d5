"""The progress channel's status write on the local control plane: each accepted report stores the job's
progress and its job model in one preconditioned patch, a conflict stores the report once over a fresh read,
and a family job's summary names its family. The channel runs in the test's process against the real API
server (its cache primed from the API as the operator's watches would), beside the harness's operator."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from stretto import contracts
from stretto.operator import kube
from stretto.operator.cluster_cache import ClusterCache, Kind
from stretto.operator.job_models import LEARNED, STATUS_FIELD, SUMMARY_FIELD
from stretto.operator.progress_channel import ProgressChannel
from stretto.operator.progress_reports import ProgressReport
from tests.integration.harness import Harness, wait_for
from tests.integration.test_walking_skeleton import (
    create_job,
    get_job,
    running_workers,
    training_job,
    worker_pods,
)

RATE = 2600.0
BATCH = 128
PER_REPORT = 5000.0


@pytest.fixture
def api_of_harness(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator's clients (`operator.kube`) configured for the harness's API server, as KUBECONFIG does
    for the operator process."""
    monkeypatch.setenv("KUBECONFIG", str(harness.kubeconfig))
    kube.api_client.cache_clear()
    yield
    kube.api_client.cache_clear()


ChannelOf = Callable[[str], tuple[ProgressChannel, ClusterCache]]


@pytest.fixture
def channel_of(api_of_harness: None, api: client.ApiClient, core: client.CoreV1Api,
               custom: client.CustomObjectsApi, namespace: str) -> ChannelOf:
    def make(job: str) -> tuple[ProgressChannel, ClusterCache]:
        wait_for(lambda: running_workers(core, namespace, job, 1), 120, f"the worker of {job}")
        cache = ClusterCache()
        cache.store(Kind.JOB, get_job(custom, namespace, job))
        for pod in worker_pods(core, namespace, job):
            cache.store(Kind.POD, api.sanitize_for_serialization(pod))
        return ProgressChannel(key=b"k" * 32, url="http://unused", cache=cache), cache
    return make


def report(namespace: str, job: str, n: int, rate: float = RATE) -> ProgressReport:
    return ProgressReport(namespace=namespace, job=job, worker=0, epoch=n * 0.1, samples_done=n * PER_REPORT,
                          samples_per_second=rate, batch_size=BATCH, timestamp=time.time())


def observed(status: dict[str, Any]) -> int:
    """The reports the stored posterior has learned from: those in its window and those folded into its sums."""
    model = status[STATUS_FIELD]
    return len(model["reports"]) + int(model["folded"]["count"])


def cached_status(cache: ClusterCache, namespace: str, job: str) -> dict[str, Any]:
    body = cache.job(f"{namespace}/{job}")
    assert body is not None
    return dict(body.get("status") or {})


def test_each_accepted_report_teaches_the_job_model_in_the_same_status_write(
        channel_of: ChannelOf, custom, namespace):
    create_job(custom, namespace, training_job("novel", profile={"model": "my-own-net"}))
    channel, cache = channel_of("novel")
    for n, rate in enumerate([RATE, 0.97 * RATE, 1.03 * RATE], start=1):
        assert channel._ingest(report(namespace, "novel", n, rate)) is not None
        # The cache holds the patch's answer: one write carried both the progress and the model.
        written = cached_status(cache, namespace, "novel")
        assert written["progress"]["samplesDone"] == n * PER_REPORT
        assert observed(written) == n
        assert written[SUMMARY_FIELD]["name"] == LEARNED and written[SUMMARY_FIELD]["reports"] == n
    stored = get_job(custom, namespace, "novel")["status"]
    assert stored[SUMMARY_FIELD]["reports"] == 3 and stored["progress"]["samplesDone"] == 3 * PER_REPORT
    assert 0 < stored[SUMMARY_FIELD]["uncertainty"] < 50
    assert abs(stored[SUMMARY_FIELD]["samplesPerSecond"] / RATE - 1) < 0.1


def test_a_conflict_stores_the_report_once_over_a_fresh_read(
        channel_of: ChannelOf, custom, namespace, monkeypatch: pytest.MonkeyPatch):
    create_job(custom, namespace, training_job("novel", profile={"model": "my-own-net"}))
    channel, cache = channel_of("novel")
    stale = cache.job(f"{namespace}/novel")
    assert stale is not None
    # The job moves on in the API after the cache read it: the first patch carries a stale resourceVersion.
    custom.patch_namespaced_custom_object(contracts.GROUP, contracts.VERSION, namespace, contracts.TRAININGJOB_PLURAL,
                                          "novel", {"metadata": {"labels": {"touched": "yes"}}})
    reads: list[bool] = []
    real_read = channel._job_and_workers

    def recorded_read(ns: str, name: str, *, fresh: bool) -> Any:
        reads.append(fresh)
        return real_read(ns, name, fresh=fresh)
    monkeypatch.setattr(channel, "_job_and_workers", recorded_read)

    assert channel._ingest(report(namespace, "novel", 1)) is not None
    assert reads == [False, True]  # the cached copy was refused (409), the fresh read stored
    stored = get_job(custom, namespace, "novel")
    assert stored["metadata"]["labels"]["touched"] == "yes"
    assert stored["status"][SUMMARY_FIELD]["reports"] == 1 and observed(stored["status"]) == 1
    assert stored["status"]["progress"]["samplesDone"] == PER_REPORT


def test_a_family_jobs_summary_names_its_family(channel_of: ChannelOf, custom, namespace):
    create_job(custom, namespace, training_job("family", profile={"model": "resnet18"}))
    channel, _ = channel_of("family")
    assert channel._ingest(report(namespace, "family", 1, rate=2000.0)) is not None
    status = get_job(custom, namespace, "family")["status"]
    assert status[SUMMARY_FIELD]["name"] == "resnet18"
    assert "sensitivity" in status[STATUS_FIELD]["prior"]  # the family's grid travels with it
