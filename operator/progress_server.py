"""The operator's progress endpoint: `POST /v1/progress` and `GET /healthz` (aiohttp).

Workers (through `stretto.sdk.Reporter`) post one JSON report each; the body names the job, the
`Authorization: Bearer <token>` header must carry that job's token. The app only parses,
authenticates and answers: `verify(namespace, job, token)` and `ingest(report)` are callbacks
(usually `TokenVerifier` and `ProgressLedger.ingest` with the job's context), so this module has
no Kubernetes imports and tests run it on 127.0.0.1 as it runs in the operator.

Statuses: 202 accepted and stored (body: `ProgressResponse`), 400 invalid body, 401 no bearer
token, 403 a token that does not open the job the report claims (nothing is recorded), 404 a job
the operator no longer tracks, 503 the report could not be stored (the worker sends it again).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError

from stretto.operator.progress_reports import ProgressReport, ProgressResponse
from stretto.sdk.environment import HEALTH_PATH, PROGRESS_PATH

log = logging.getLogger(__name__)

PROGRESS_PORT = 8081
MAX_BODY_BYTES = 16 * 1024

T = TypeVar("T")
VerifyFn = Callable[[str, str, str], bool | Awaitable[bool]]
IngestFn = Callable[[ProgressReport], ProgressResponse | Awaitable[ProgressResponse | None] | None]


async def _resolve(value: T | Awaitable[T]) -> T:
    return await value if inspect.isawaitable(value) else value  # type: ignore[no-any-return]


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _validation_message(error: ValidationError) -> str:
    parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()]
    return "invalid progress report: " + "; ".join(parts)


def build_progress_app(verify: VerifyFn, ingest: IngestFn) -> web.Application:
    async def post_progress(request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "missing bearer token (Authorization: Bearer <STRETTO_PROGRESS_TOKEN>)",
                          **{"WWW-Authenticate": "Bearer"})
        try:
            data = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid progress report: body is not JSON")
        try:
            report = ProgressReport.model_validate(data)
        except ValidationError as error:
            return _error(400, _validation_message(error))
        if not await _resolve(verify(report.namespace, report.job, token.strip())):
            log.warning("refused a progress report for %s/%s from %s: token does not match",
                        report.namespace, report.job, request.remote)
            return _error(403, f"token does not authorize progress reports for {report.namespace}/{report.job}")
        try:
            response = await _resolve(ingest(report))
        except Exception as error:
            log.warning("a progress report for %s/%s was not stored: %s", report.namespace, report.job,
                        str(error)[:300])
            return _error(503, "the report could not be stored; send it again", **{"Retry-After": "1"})
        if response is None:
            return _error(404, f"TrainingJob {report.namespace}/{report.job} is not tracked by the operator")
        return web.json_response(response.model_dump(by_alias=True, mode="json"), status=202)

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post(PROGRESS_PATH, post_progress)
    app.router.add_get(HEALTH_PATH, healthz)
    return app


async def start_progress_server(app: web.Application, *, host: str = "0.0.0.0",
                                port: int = PROGRESS_PORT, shared: bool = False) -> tuple[web.AppRunner, int]:
    """Serve `app` in the running event loop (kopf's); returns the runner (to `cleanup()`) and the port.

    `port=0` picks a free port (the dev cluster and tests), reported back as the second value.
    `shared` lets replicas on one host listen on one port (SO_REUSEPORT): the kernel spreads the
    workers' connections over the live ones, as a Service spreads them over pods.
    """
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=shared or None)
    await site.start()
    addresses = runner.addresses
    return runner, int(addresses[0][1]) if addresses else port
