"""The feeder's list/watch/resync logic against a scripted stand-in for KubeAPI (a unit test:
the real API server is exercised by the lead's integration tests)."""

import threading
import time

from stretto import contracts
from stretto.scheduler.cluster_cache import ClusterCache
from stretto.scheduler.kube_api import KubeAPIError
from stretto.scheduler.pending_pods import PendingPods
from stretto.scheduler.testing import make_node, make_pod
from stretto.scheduler.watch import NODES_PATH, PODS_PATH, CacheFeeder


class ScriptedAPI:
    """Answers list_all from `lists` (one per call) and watch from `watches` (lists of events or an
    exception), per path; once a script runs out, watches block until stopped."""

    def __init__(self, lists, watches):
        self.lists = {p: list(v) for p, v in lists.items()}
        self.watches = {p: list(v) for p, v in watches.items()}
        self.list_calls = {NODES_PATH: 0, PODS_PATH: 0}
        self.queries = []
        self.done = threading.Event()

    def list_all(self, path, *, query=()):
        self.queries.append((path, tuple(query)))
        self.list_calls[path] += 1
        script = self.lists[path]
        items = script.pop(0) if len(script) > 1 else script[0]
        return items, str(self.list_calls[path])

    def watch(self, path, *, resource_version, query=(), timeout_s=300):
        script = self.watches[path]
        if not script:
            self.done.wait(5)
            return
        step = script.pop(0)
        if isinstance(step, Exception):
            raise step
        yield from step


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def bound(name, node, ids, **kw):
    return make_pod(name, gpus=len(ids), node=node, phase="Running",
                    annotations={contracts.ANNOTATION_GPU_IDS: ",".join(map(str, ids))}, **kw)


def test_list_watch_and_resync_after_410():
    a, b, c = bound("a", "n1", [0, 1]), bound("b", "n1", [2]), bound("c", "n2", [5])
    done_b = {**b, "status": {"phase": "Succeeded"}}
    api = ScriptedAPI(
        lists={NODES_PATH: [[make_node("n1")], [make_node("n1"), make_node("n2")]],
               PODS_PATH: [[a], [c]]},
        watches={
            NODES_PATH: [[{"type": "ADDED", "object": make_node("n3", gpus=2)},
                          {"type": "DELETED", "object": make_node("n3")}],
                         KubeAPIError(410, "Gone")],
            PODS_PATH: [[{"type": "ADDED", "object": b},
                         {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
                         {"type": "MODIFIED", "object": done_b}],
                        [{"type": "ERROR", "object": {"code": 410, "message": "too old"}}]],
        },
    )
    cache = ClusterCache()
    feeder = CacheFeeder(api, cache, retry_s=0.01)
    assert not feeder.synced
    feeder.start()
    try:
        assert feeder.wait_synced(5)
        # After the 410s both lists ran again and replaced the cache's contents.
        assert wait_for(lambda: api.list_calls[NODES_PATH] >= 2 and api.list_calls[PODS_PATH] >= 2)
        assert wait_for(lambda: [bk.uid for bk in cache.bookings()] == [c["metadata"]["uid"]])
        assert wait_for(lambda: set(cache.snapshot()) == {"n1", "n2"})
        assert cache.view("n1").free_whole_gpus == 8       # a was not in the second list; b finished
        assert cache.view("n2").devices[5].whole
    finally:
        api.done.set()
        feeder.stop()
    selector = ("fieldSelector", "status.phase!=Succeeded,status.phase!=Failed")
    assert ("/api/v1/pods", (selector,)) in api.queries


def test_pod_events_book_and_free_devices():
    cache = ClusterCache()
    api = ScriptedAPI(lists={NODES_PATH: [[make_node("n1")]], PODS_PATH: [[]]},
                      watches={NODES_PATH: [], PODS_PATH: []})
    feeder = CacheFeeder(api, cache)
    feeder._replace_nodes([make_node("n1")], 0.0)
    a = bound("a", "n1", [3])
    feeder._pod_event("ADDED", make_pod("pending", gpus=1))           # unbound: holds nothing
    feeder._pod_event("MODIFIED", a)
    anon = make_pod("anon", gpus=2, node="n1", phase="Running")      # bound by someone else, ids unknown
    feeder._pod_event("ADDED", anon)
    view = cache.view("n1")
    assert view.devices[3].whole and view.anonymous_gpus == 2 and view.free_whole_gpus == 5
    feeder._pod_event("DELETED", a)
    feeder._pod_event("MODIFIED", {**anon, "status": {"phase": "Failed"}})
    feeder._pod_event("ADDED", {"metadata": {}})                      # no uid: ignored
    assert cache.view("n1").free_whole_gpus == 8 and cache.bookings() == []
    feeder._node_event("DELETED", make_node("n1"))
    assert cache.view("n1") is None


def test_api_errors_are_retried_not_fatal():
    api = ScriptedAPI(lists={NODES_PATH: [[make_node("n1")]], PODS_PATH: [[]]},
                      watches={NODES_PATH: [KubeAPIError(0, "connection refused")], PODS_PATH: []})
    feeder = CacheFeeder(api, ClusterCache(), retry_s=0.01)
    feeder.start()
    try:
        assert wait_for(lambda: api.list_calls[NODES_PATH] >= 2)
        assert feeder.wait_synced(5)
    finally:
        api.done.set()
        feeder.stop()


def test_the_pod_stream_keeps_the_api_servers_copy_of_pending_pods():
    listed = make_pod("listed", gpus=1)
    other_scheduler = make_pod("theirs", gpus=1)
    other_scheduler["spec"]["schedulerName"] = "default-scheduler"
    created = make_pod("created", gpus=2)
    now_bound = bound("listed", "n1", [0], uid=listed["metadata"]["uid"])
    api = ScriptedAPI(
        lists={NODES_PATH: [[make_node("n1")]], PODS_PATH: [[listed, other_scheduler]]},
        watches={NODES_PATH: [], PODS_PATH: [[{"type": "ADDED", "object": created},
                                              {"type": "MODIFIED", "object": now_bound}]]},
    )
    pending = PendingPods()
    feeder = CacheFeeder(api, ClusterCache(), pending=pending)
    feeder.start()
    try:
        assert wait_for(lambda: pending.get(created["metadata"]["uid"]) is not None)
        assert wait_for(lambda: pending.get(listed["metadata"]["uid"]) is None)  # bound: not pending
        assert pending.get(created["metadata"]["uid"]).whole_gpus == 2
        assert pending.get(other_scheduler["metadata"]["uid"]) is None           # not Stretto's
        assert len(pending) == 1
    finally:
        api.done.set()
        feeder.stop()
