"""The extender's HTTP face (aiohttp): POST /filter and /bind; GET /healthz, /readyz,
/metrics. Every POST answers 200 with a JSON body: kube-scheduler treats any other status as an
extender failure, and a malformed request deserves an Error answer, not a crash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError

from .extender import NOT_READY, Extender
from .metrics import BindFailure, ExtenderMetrics, Verb
from .wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
)

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 2**20  # full Node objects for thousands of nodes (nodeCacheCapable: false)
MAX_BIND_BODY_BYTES = 4096   # four names within Kubernetes' limits, with room to spare
MAX_MESSAGE = 300            # characters of an answer or log line built from a request
BIND_THREADS = 8             # binds block on API round trips; the ledger lock keeps them honest
_EXECUTOR: web.AppKey[ThreadPoolExecutor] = web.AppKey("bind_executor", ThreadPoolExecutor)


class _TooLarge(ValueError):
    pass


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        text = f"{where}: {first['msg']}"
    else:
        text = str(exc)
    return f"stretto extender: malformed request: {text}"[:MAX_MESSAGE]


async def _body(request: web.Request, limit: int) -> bytes:
    """The request body, refused unread when it declares more than `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise _TooLarge(f"body of {request.content_length} bytes is over the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _json(model_json: bytes) -> web.Response:
    return web.Response(body=model_json, content_type="application/json")


def build_app(
    extender: Extender, *, metrics: ExtenderMetrics, ready: Callable[[], bool],
    bind_threads: int = BIND_THREADS,
) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    executor = ThreadPoolExecutor(max_workers=bind_threads, thread_name_prefix="stretto-bind")
    app[_EXECUTOR] = executor

    async def shutdown(_: web.Application) -> None:
        executor.shutdown(wait=True, cancel_futures=False)

    app.on_cleanup.append(shutdown)

    def observe(verb: Verb, started: float, ok: bool) -> None:
        metrics.latency.labels(verb.value).observe(time.perf_counter() - started)
        metrics.requests.labels(verb.value, "ok" if ok else "error").inc()

    async def filter_(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            args = ExtenderArgs.model_validate_json(await _body(request, MAX_BODY_BYTES))
        except (ValidationError, ValueError) as exc:
            result = ExtenderFilterResult(Error=_problem(exc))
        else:
            try:
                result = extender.filter(args)
            except Exception as exc:  # a bug: answer, log, never crash the scheduler's call
                log.exception("filter failed")
                result = ExtenderFilterResult(Error=f"stretto extender: internal error: {exc}"[:MAX_MESSAGE])
        observe(Verb.FILTER, started, not result.Error)
        return _json(result.model_dump_json(by_alias=True).encode())

    async def bind(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            args = ExtenderBindingArgs.model_validate_json(await _body(request, MAX_BIND_BODY_BYTES))
        except (ValidationError, ValueError) as exc:
            metrics.bind_failures.labels(BindFailure.MALFORMED.value).inc()
            result = ExtenderBindingResult(Error=_problem(exc))
        else:
            try:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(executor, extender.bind, args)
            except Exception as exc:
                log.exception("bind failed")
                result = ExtenderBindingResult(Error=f"stretto extender: internal error: {exc}"[:MAX_MESSAGE])
        observe(Verb.BIND, started, not result.Error)
        return _json(result.model_dump_json().encode())

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(_: web.Request) -> web.Response:
        if ready():
            return web.Response(text="ok")
        return web.Response(status=503, text=NOT_READY)

    async def metrics_(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_post("/filter", filter_)
    app.router.add_post("/bind", bind)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_)
    return app
