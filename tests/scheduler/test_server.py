"""Requests through the real aiohttp app on 127.0.0.1 (aiohttp's TestServer), binder recorded."""

import asyncio
import json
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer

from stretto.scheduler.cluster_cache import ClusterCache, node_capacity
from stretto.scheduler.extender import Extender
from stretto.scheduler.metrics import ExtenderMetrics
from stretto.scheduler.server import build_app
from stretto.scheduler.testing import RecordingBinder, make_node, make_pod

POD = make_pod("w0", gpus=2, cpu="4", memory="16Gi")


def run(requests, *, ready=True, concurrently=None):
    """Send [(method, path, body)] and return [(status, parsed body or text)], plus the binder; with
    `concurrently(client, method, path, body)`, send them all at once and return what it returns."""
    cache = ClusterCache()
    cache.replace_nodes(node_capacity(n) for n in [make_node("n1"), make_node("n2", gpus=1)])
    binder = RecordingBinder()
    binder.add(POD)
    metrics = ExtenderMetrics()
    extender = Extender(cache=cache, binder=binder, metrics=metrics, ready=lambda: ready)
    app = build_app(extender, metrics=metrics, ready=lambda: ready)

    async def go():
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            if concurrently is not None:
                return await asyncio.gather(*(concurrently(client, *r) for r in requests))
            out = []
            for method, path, body in requests:
                data = body if isinstance(body, bytes | str) else json.dumps(body)
                response = await client.request(method, path, data=data)
                text = await response.text()
                try:
                    out.append((response.status, json.loads(text)))
                except ValueError:
                    out.append((response.status, text))
            return out

    return asyncio.run(go()), binder


BIND = {"PodName": "w0", "PodNamespace": "default", "PodUID": POD["metadata"]["uid"], "Node": "n1"}


@pytest.mark.parametrize(
    ("body", "want_error"),
    [
        (b"{not json", "malformed request"),
        (b"", "malformed request"),
        ([], "malformed request"),
        ({}, "Pod: Field required"),
        ({"Pod": None, "NodeNames": ["n1"]}, "Pod"),
        ({"Pod": "pod", "NodeNames": ["n1"]}, "Pod"),
        ({"Pod": POD, "NodeNames": "n1"}, "NodeNames"),
        ({"Pod": POD, "NodeNames": [1, 2]}, "NodeNames"),
        ({"Pod": POD}, "neither NodeNames nor Nodes"),
        ({"Pod": POD, "Nodes": {"items": [{"metadata": {}}]}}, "no metadata.name"),
        ({"Pod": {"metadata": {"name": "x"}}, "NodeNames": ["n1"]}, "metadata.namespace is missing"),
        ({"Pod": {**POD, "spec": {"containers": [{"resources": {"limits": {"cpu": "lots"}}}]}},
          "NodeNames": ["n1"]}, "invalid quantity"),
    ],
    ids=["bad-json", "empty", "array", "no-pod", "null-pod", "pod-str", "names-str", "names-int", "no-nodes",
         "node-no-name", "pod-no-ns", "bad-quantity"],
)
def test_malformed_filter(body, want_error):
    [filtered], binder = run([("POST", "/filter", body)])
    assert filtered[0] == 200 and want_error in filtered[1]["Error"]
    assert filtered[1]["NodeNames"] is None
    assert binder.bound == []


@pytest.mark.parametrize(
    ("body", "want_error"),
    [
        (b"\x00garbage", "malformed request"),
        ({}, "PodName"),
        ({**BIND, "PodUID": ""}, "PodUID"),
        ({**BIND, "Node": 5}, "Node"),
        ({**BIND, "PodName": None}, "PodName"),
        ({**BIND, "Node": "ghost"}, "not in the extender's cache"),
        ({**BIND, "PodUID": "impostor"}, "has uid"),
        ({**BIND, "PodName": "nobody"}, "not found"),
        ({**BIND, "PodName": "p" * 254}, "PodName: String should have at most 253 characters"),
        ({**BIND, "PodNamespace": "n" * 64}, "PodNamespace: String should have at most 63 characters"),
        ({**BIND, "Node": "n" * 254}, "Node: String should have at most 253 characters"),
        ({**BIND, "PodName": "p" * 10 * 2**20}, "over the 4096-byte limit"),
    ],
    ids=["garbage", "empty", "empty-uid", "node-int", "name-null", "unknown-node", "wrong-uid",
         "unknown-pod", "long-name", "long-namespace", "long-node", "10MB-name"],
)
def test_malformed_bind_never_binds(body, want_error):
    [(status, result)], binder = run([("POST", "/bind", body)])
    assert status == 200 and want_error in result["Error"] and len(result["Error"]) < 300
    assert binder.bound == []
    assert all(len(name) <= 253 for _, name in binder.reads)   # nothing oversized reached the API


def test_a_normal_bind_is_answered_while_oversized_ones_arrive():
    huge = json.dumps({**BIND, "PodName": "p" * 10 * 2**20})
    requests = [("POST", "/bind", huge)] * 8 + [("POST", "/bind", json.dumps(BIND))]

    async def timed(client, method, path, body):
        started = time.perf_counter()
        response = await client.request(method, path, data=body)
        return json.loads(await response.text()), time.perf_counter() - started

    results, binder = run(requests, concurrently=timed)
    *oversized, (normal, seconds) = results
    assert all("over the 4096-byte limit" in answer["Error"] for answer, _ in oversized)
    assert normal == {"Error": ""} and len(binder.bound) == 1
    assert seconds < 1.0, f"a normal bind took {seconds:.2f}s beside 8 oversized ones"


def test_filter_bind_happy_path_and_metrics():
    args = {"Pod": POD, "Nodes": None, "NodeNames": ["n1", "n2"]}
    results, binder = run([
        ("POST", "/filter", args), ("POST", "/prioritize", args), ("POST", "/bind", BIND),
        ("POST", "/bind", BIND), ("GET", "/metrics", None),
    ])
    (s1, filtered), (s2, _), (s3, bound), (s4, again), (s5, metrics) = results
    assert s1 == s3 == s4 == s5 == 200
    assert s2 == 404  # no prioritize verb: filter answers the best-fitting nodes
    assert filtered == {"Nodes": None, "NodeNames": ["n1"], "Error": "", "FailedNodes": {},
                        "FailedAndUnresolvableNodes": {"n2": "stretto: pod needs 2 GPUs, node has 1"}}
    assert bound == {"Error": ""} and again == {"Error": ""}   # a retry of a bind that took effect
    assert len(binder.bound) == 1
    assert 'stretto_extender_requests_total{result="ok",verb="filter"} 1.0' in metrics
    assert 'stretto_extender_request_duration_seconds_count{verb="bind"} 2.0' in metrics
    assert 'stretto_extender_binds_total{gpu_mode="whole"} 1.0' in metrics


@pytest.mark.parametrize(("ready", "want_status"), [(True, 200), (False, 503)])
def test_health_and_readiness(ready, want_status):
    [(health, _), (readiness, _), (status, result)], _ = run(
        [("GET", "/healthz", None), ("GET", "/readyz", None),
         ("POST", "/filter", {"Pod": POD, "NodeNames": []})],
        ready=ready,
    )
    assert health == 200 and readiness == want_status
    assert status == 200 and (result["Error"] == "") == ready


def test_wrong_method_and_path_are_http_errors_not_crashes():
    [(get_filter, _), (nowhere, _)], _ = run([("GET", "/filter", None), ("POST", "/nowhere", {})])
    assert (get_filter, nowhere) == (405, 404)
