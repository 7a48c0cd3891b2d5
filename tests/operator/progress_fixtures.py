"""Builders for the progress tests: a TrainingJob, its allocation, and the real progress app served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.snapshots import JobAllocation, WorkerPlacement
from stretto.operator.job_models import JobModels
from stretto.operator.progress_ledger import ProgressLedger
from stretto.operator.progress_reports import JobContext, ProgressReport, ProgressResponse, job_context
from stretto.operator.progress_server import build_progress_app, start_progress_server
from stretto.operator.progress_tokens import TokenVerifier, mint_token

KEY = b"k" * 32
BOOK = load_builtin_profiles()
MODELS = JobModels(BOOK)


def job_body(name: str = "job", *, namespace: str = "ns", uid: str | None = None, model: str = "resnet18",
             batch_sizes: tuple[int, ...] = (32, 64, 128), mode: str = "gns", epochs: int = 10,
             samples_per_epoch: int = 50_000, **spec: Any) -> dict[str, Any]:
    whole_gpus = {} if "gpuShare" in spec else {"gpusPerWorker": 1}  # the two exclude each other
    return {
        "apiVersion": contracts.API_VERSION, "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}"},
        "spec": {"workers": {"min": 1, "max": 4}, **whole_gpus,
                 "work": {"epochs": epochs, "samplesPerEpoch": samples_per_epoch},
                 "adaptation": {"mode": mode, "batchSizes": list(batch_sizes), "initialBatchSize": batch_sizes[0]},
                 "profile": {"model": model},
                 "template": {"spec": {"containers": [{"name": "trainer", "image": "img"}]}}, **spec},
    }


def allocation(job_id: str = "ns/job", *, workers: int = 2, gpus_per_worker: int = 1, cpus: float = 3.0,
               memory_gib: float = 62.5) -> JobAllocation:
    return JobAllocation(job_id, tuple(
        WorkerPlacement(node=f"node-{i}", gpu_indices=tuple(range(gpus_per_worker)), cpus=cpus * gpus_per_worker,
                        memory_gib=memory_gib * gpus_per_worker) for i in range(workers)))


def context(body: dict[str, Any] | None = None, *, held: JobAllocation | None = None,
            checkpoint_requested: bool = False) -> JobContext:
    return job_context(body or job_body(), models=MODELS, allocation=held or allocation(),
                       checkpoint_requested=checkpoint_requested)


def token(body: dict[str, Any]) -> str:
    metadata = body["metadata"]
    return mint_token(KEY, namespace=metadata["namespace"], job=metadata["name"], uid=metadata["uid"])


def report(**fields: Any) -> ProgressReport:
    base: dict[str, Any] = {"namespace": "ns", "job": "job", "worker": 0, "epoch": 1.0, "samples_done": 50_000.0,
                            "samples_per_second": 1000.0, "batch_size": 32, "timestamp": 1.7e9}
    return ProgressReport.model_validate(base | fields)


class Operator:
    """The operator's side of the channel: known jobs, their contexts, a ledger, the app."""

    def __init__(self, *bodies: dict[str, Any], checkpoint_requested: bool = False) -> None:
        self.bodies = {(b["metadata"]["namespace"], b["metadata"]["name"]): b for b in bodies}
        self.ledger = ProgressLedger(clock=lambda: 1.7e9)
        self.checkpoint_requested = checkpoint_requested
        self.tracked = set(self.bodies)  # tests drop a job from here to see a 404
        self.store_failures = 0          # the next N reports cannot be stored (the API refuses the write)

    def uid_of(self, namespace: str, name: str) -> str | None:
        body = self.bodies.get((namespace, name))
        return None if body is None else str(body["metadata"]["uid"])

    def ingest(self, incoming: ProgressReport) -> ProgressResponse | None:
        key = (incoming.namespace, incoming.job)
        if key not in self.tracked:
            return None
        body = self.bodies[key]
        held = allocation(f"{key[0]}/{key[1]}")
        if self.store_failures:
            self.store_failures -= 1
            raise RuntimeError("the status write timed out")
        return self.ledger.ingest(incoming, context(body, held=held, checkpoint_requested=self.checkpoint_requested))

    def app(self) -> web.Application:
        return build_progress_app(TokenVerifier(KEY, self.uid_of), self.ingest)


@contextmanager
def serving(app: web.Application) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (a free port) in a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()

    def main() -> None:
        asyncio.set_event_loop(loop)
        runner, port = loop.run_until_complete(start_progress_server(app, host="127.0.0.1", port=0))
        started.update(runner=runner, port=port)
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=main, name="progress-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the progress server did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{started['port']}"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
