"""A seeded fuzz of the extender's three verbs, sent over HTTP as anyone who reaches it could.

Requests: garbage bytes, JSON of the wrong shape and types, 10 MB bodies and names, negative and
absurd quantities, binds of pods and nodes that do not exist, and forged filters (a real pending
pod stripped of its GPU limit) followed by a bind of that pod to any node. `FuzzReport` counts what
the extender answered: no 5xx, every answer within `slow_s`, and every bind it accepted one the API
server's pod allows (bound where its plan says); requests that got no answer are kept with their
time, so a caller that restarted the extender on purpose can tell its own doing from a crash.
"""

from __future__ import annotations

import copy
import http.client
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stretto import contracts

HUGE = 10 * 2**20


@dataclass(frozen=True)
class Request:
    kind: str
    path: str
    body: bytes
    binds: tuple[str, str, str] | None = None  # (namespace, name, node) when the request is a bind


@dataclass
class FuzzReport:
    sent: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)   # 5xx answers
    dropped: list[tuple[float, str]] = field(default_factory=list)  # (monotonic time, what) with no answer
    slowest_s: float = 0.0
    slow: list[str] = field(default_factory=list)
    accepted_binds: list[tuple[str, str, str]] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.sent} requests, {len(self.server_errors)} 5xx, {len(self.dropped)} unanswered, slowest "
                f"{self.slowest_s * 1000:.0f} ms, {len(self.slow)} over the limit, "
                f"{len(self.accepted_binds)} binds accepted")


def _pod(name: str, limits: Mapping[str, str], uid: str, namespace: str = "fuzz") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"schedulerName": contracts.SCHEDULER_NAME,
                     "containers": [{"name": "c", "resources": {"limits": dict(limits)}}]}}


def _bind(namespace: str, name: str, uid: str, node: str) -> bytes:
    return json.dumps({"PodName": name, "PodNamespace": namespace, "PodUID": uid, "Node": node}).encode()


def requests(count: int, seed: int, *, nodes: list[str], pending: list[Mapping[str, Any]]) -> list[Request]:
    """`count` bad requests; `pending` are real pods waiting for Stretto's scheduler (forged filters)."""
    rng = random.Random(seed)
    gpu = contracts.GPU_RESOURCE

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def garbage() -> Request:
        verb = rng.choice(["/filter", "/bind"])
        return Request("garbage", verb, bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300))))

    def wrong_types() -> Request:
        body = rng.choice([{"Pod": 5, "NodeNames": ["n"]}, {"Pod": {}, "NodeNames": "n"}, [], "x", None,
                           {"Pod": {"metadata": {"name": 1}}, "NodeNames": [1]},
                           {"PodName": 1, "PodNamespace": [], "PodUID": {}, "Node": None}])
        return Request("wrong-types", rng.choice(["/filter", "/bind"]), json.dumps(body).encode())

    def oversized() -> Request:
        if rng.random() < 0.5:
            return Request("oversized", "/bind", _bind("fuzz", "p" * HUGE, uid(), rng.choice(nodes)))
        pod = _pod("big", {gpu: "1"}, uid())
        pod["metadata"]["annotations"] = {"x": "y" * HUGE}
        return Request("oversized", "/filter",
                       json.dumps({"Pod": pod, "NodeNames": nodes}).encode())

    def bad_quantity() -> Request:
        limits = rng.choice([{gpu: "-1"}, {"cpu": "-500m"}, {"cpu": "9" * 400}, {"memory": "1e999999999"},
                             {gpu: "x" * 5000}, {gpu: "1.5"}])
        return Request("bad-quantity", "/filter",
                       json.dumps({"Pod": _pod("q", limits, uid()), "NodeNames": nodes}).encode())

    def unknown_bind() -> Request:
        node = rng.choice([*nodes, "no-such-node", "n" * 253])
        return Request("unknown-bind", "/bind", _bind("fuzz", f"ghost-{rng.randint(0, 9999)}", uid(), node))

    def forged() -> list[Request]:
        if not pending:
            return [unknown_bind()]
        real = rng.choice(pending)
        copy_ = copy.deepcopy(dict(real))
        for container in copy_.get("spec", {}).get("containers") or []:
            container["resources"] = {}
        meta = real["metadata"]
        node = rng.choice(nodes)
        return [Request("forged-filter", "/filter", json.dumps({"Pod": copy_, "NodeNames": [node]}).encode()),
                Request("forged-bind", "/bind", _bind(meta["namespace"], meta["name"], meta["uid"], node),
                        binds=(meta["namespace"], meta["name"], node))]

    makers: list[Callable[[], Request | list[Request]]] = [garbage, wrong_types, bad_quantity, unknown_bind,
                                                           forged, oversized]
    weights = [25, 20, 20, 15, 18, 2]
    out: list[Request] = []
    while len(out) < count:
        made = rng.choices(makers, weights)[0]()
        out += made if isinstance(made, list) else [made]
    return out[:count]


def send(host: str, port: int, batch: list[Request], *, slow_s: float = 1.0, parallel: int = 4) -> FuzzReport:
    report = FuzzReport()

    def one(request: Request) -> tuple[Request, int | None, float, str]:
        sent_at = time.monotonic()
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=30)
        try:
            connection.request("POST", request.path, body=request.body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
            return request, response.status, time.perf_counter() - started, text
        except (OSError, http.client.HTTPException) as error:
            return request, None, sent_at, f"{type(error).__name__}: {error}"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for request, status, seconds, text in pool.map(one, batch):
            report.sent += 1
            report.by_kind[request.kind] = report.by_kind.get(request.kind, 0) + 1
            if status is None:  # `seconds` is then the moment it was sent
                report.dropped.append((seconds, f"{request.kind} {request.path}: {text[:200]}"))
                continue
            report.slowest_s = max(report.slowest_s, seconds)
            if seconds > slow_s:
                report.slow.append(f"{request.kind} {request.path}: {seconds:.2f}s")
            if status >= 500:
                report.server_errors.append(f"{request.kind} {request.path}: {status} {text[:200]}")
                continue
            if request.binds is not None and status == 200 and json.loads(text).get("Error") == "":
                report.accepted_binds.append(request.binds)
    return report


def disallowed_binds(report: FuzzReport, pod_of: Callable[[str, str], Mapping[str, Any]]) -> list[str]:
    """Binds the fuzz got accepted that the API's pod would not allow: on another node than its plan."""
    wrong = []
    for namespace, name, node in report.accepted_binds:
        pod = pod_of(namespace, name)
        planned = (pod["metadata"].get("annotations") or {}).get(contracts.ANNOTATION_PLANNED_NODE)
        if planned and planned != node:
            wrong.append(f"{namespace}/{name} bound to {node}, planned for {planned}")
    return wrong
