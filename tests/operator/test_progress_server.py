"""`POST /v1/progress` through the real aiohttp app on 127.0.0.1: authenticated, validated, recorded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from stretto.operator.progress_server import build_progress_app, start_progress_server
from tests.operator.progress_fixtures import Operator, job_body, report, token

JOB, OTHER = job_body("job"), job_body("other")


def body_for(**fields: Any) -> dict[str, Any]:
    return report(**fields).model_dump()


def send(operator: Operator, requests: list[tuple[str, str, Any, str | None]]) -> list[tuple[int, Any]]:
    """[(method, path, body, bearer token)] -> [(status, parsed body)] against the operator's app."""

    async def go() -> list[tuple[int, Any]]:
        async with TestClient(TestServer(operator.app(), host="127.0.0.1")) as client:
            out = []
            for method, path, body, bearer in requests:
                headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
                data = body if isinstance(body, str | bytes) or body is None else json.dumps(body)
                response = await client.request(method, path, data=data, headers=headers)
                text = await response.text()
                try:
                    out.append((response.status, json.loads(text)))
                except ValueError:
                    out.append((response.status, text))
            return out

    return asyncio.run(go())


def test_an_authenticated_report_is_recorded_and_answered():
    operator = Operator(JOB, OTHER, checkpoint_requested=True)
    [(status, reply)] = send(operator, [("POST", "/v1/progress", body_for(epoch=1.5, samples_done=75_000.0),
                                         token(JOB))])
    assert status == 202
    assert reply["allocation"] == {"workers": 2, "gpus": 2, "gpusPerWorker": 1, "cpuPerWorker": "3",
                                   "memoryPerWorker": "64000Mi"}  # 62.5Gi
    assert reply["checkpointRequested"] is True
    assert reply["accepted"] == {"samplesPerSecond": 1000.0, "clipped": False, "reason": ""}
    assert operator.ledger.get("ns", "job").samples_done == 75_000.0


def test_a_forged_report_for_another_job_is_refused_and_never_applied():
    operator = Operator(JOB, OTHER)
    results = send(operator, [
        ("POST", "/v1/progress", body_for(job="other", epoch=0.5, samples_done=25_000.0), token(OTHER)),
        # the job's workers try to report for "other" with their own token:
        ("POST", "/v1/progress", body_for(job="other", epoch=9.0, samples_done=450_000.0), token(JOB)),
        ("POST", "/v1/progress", body_for(job="ghost"), token(JOB)),
    ])
    assert [status for status, _ in results] == [202, 403, 403]
    assert results[1][1]["error"] == "token does not authorize progress reports for ns/other"
    assert operator.ledger.get("ns", "other").samples_done == 25_000.0
    assert operator.ledger.get("ns", "job") is None and operator.ledger.get("ns", "ghost") is None


def test_an_implausible_report_is_clipped_and_flagged():
    operator = Operator(JOB)
    [(status, reply)] = send(operator, [("POST", "/v1/progress", body_for(samples_per_second=1e6), token(JOB))])
    assert status == 202 and reply["accepted"]["clipped"] is True
    assert reply["accepted"]["samplesPerSecond"] < 1e6 and "clipped" in reply["accepted"]["reason"]
    assert operator.ledger.get("ns", "job").flagged_reports == 1


def test_bad_requests_get_clear_statuses():
    operator = Operator(JOB)
    results = send(operator, [
        ("POST", "/v1/progress", body_for(), None),
        ("POST", "/v1/progress", body_for(), ""),
        ("POST", "/v1/progress", "{not json", token(JOB)),
        ("POST", "/v1/progress", body_for() | {"batch_size": 0}, token(JOB)),
        ("POST", "/v1/progress", ["a", "list"], token(JOB)),
        ("POST", "/v1/progress", "x" * 20_000, token(JOB)),
        ("GET", "/healthz", None, None),
    ])
    assert [status for status, _ in results] == [401, 401, 400, 400, 400, 413, 200]
    assert "missing bearer token" in results[0][1]["error"]
    assert results[2][1]["error"] == "invalid progress report: body is not JSON"
    assert results[3][1]["error"].startswith("invalid progress report: batch_size: ")
    assert operator.ledger.get("ns", "job") is None


def test_a_job_the_operator_stopped_tracking_gets_404():
    operator = Operator(JOB)
    operator.tracked.clear()
    [(status, reply)] = send(operator, [("POST", "/v1/progress", body_for(), token(JOB))])
    assert status == 404 and "not tracked" in reply["error"]


def test_async_callbacks_and_a_failing_ingest():
    async def verify(namespace: str, job: str, bearer: str) -> bool:
        return bearer == "good"

    async def ingest(_):
        raise RuntimeError("boom")

    async def go() -> tuple[int, int, str | None]:
        app = build_progress_app(verify, ingest)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            refused = await client.post("/v1/progress", json=body_for(), headers={"Authorization": "Bearer bad"})
            failed = await client.post("/v1/progress", json=body_for(), headers={"Authorization": "Bearer good"})
            return refused.status, failed.status, failed.headers.get("Retry-After")

    # A report that could not be stored is not acknowledged: the worker is told to send it again.
    assert asyncio.run(go()) == (403, 503, "1")


def test_start_progress_server_binds_a_free_port_on_loopback():
    async def go() -> tuple[int, str]:
        runner, port = await start_progress_server(Operator(JOB).app(), host="127.0.0.1", port=0)
        try:
            async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as reply:
                return port, await reply.text()
        finally:
            await runner.cleanup()

    port, text = asyncio.run(go())
    assert port > 0 and text == "ok"
