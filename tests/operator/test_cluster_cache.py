"""The watch-fed cache: newer wins by resourceVersion, deletions leave tombstones, a list replaces what it lacks."""

from __future__ import annotations

from typing import Any

from stretto import contracts
from stretto.operator.cluster_cache import ClusterCache, Kind


def pod(name: str, version: int, *, job: str = "a", uid: str = "uid-a", **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(version),
                         "labels": {contracts.LABEL_JOB: job, contracts.LABEL_ROLE: contracts.ROLE_WORKER},
                         "ownerReferences": [{"uid": uid}]},
            "status": status}


def test_a_newer_body_replaces_an_older_one_and_an_older_event_is_ignored():
    cache = ClusterCache()
    cache.observe(Kind.POD, "ADDED", pod("a-worker-0", 5, phase="Pending"))
    cache.observe(Kind.POD, "MODIFIED", pod("a-worker-0", 7, phase="Running"))
    cache.observe(Kind.POD, "MODIFIED", pod("a-worker-0", 6, phase="Pending"))  # late, older
    [held] = cache.workers_of("ns/a", "uid-a")
    assert held["status"]["phase"] == "Running"


def test_changes_mark_their_job_dirty_once_and_repeats_do_not():
    pokes: list[int] = []
    cache = ClusterCache(on_dirty=lambda: pokes.append(1))
    cache.observe(Kind.POD, "ADDED", pod("a-worker-0", 5))
    cache.observe(Kind.POD, "MODIFIED", pod("a-worker-0", 5))  # the answer to our own write, seen again
    assert cache.take_dirty() == {"ns/a"} and len(pokes) == 1
    assert cache.take_dirty() == set()
    cache.store(Kind.POD, pod("a-worker-1", 9))  # the operator's own write: no job to re-apply
    assert cache.take_dirty() == set()


def test_a_deleted_object_is_not_brought_back_by_an_older_list():
    cache = ClusterCache()
    cache.observe(Kind.POD, "ADDED", pod("a-worker-0", 5))
    cache.observe(Kind.POD, "DELETED", pod("a-worker-0", 8))
    cache.replace_all(Kind.POD, [pod("a-worker-0", 5)], listed_version=6)  # a list that began before the delete
    assert cache.workers_of("ns/a", "uid-a") == []


def test_a_list_removes_what_it_lacks_unless_it_is_newer_than_the_list():
    cache = ClusterCache()
    cache.store(Kind.POD, pod("a-worker-0", 3))   # deleted while nobody watched
    cache.store(Kind.POD, pod("a-worker-1", 12))  # created after the list was taken
    cache.replace_all(Kind.POD, [pod("a-worker-2", 9)], listed_version=10)
    assert sorted(p["metadata"]["name"] for p in cache.workers()) == ["a-worker-1", "a-worker-2"]
    assert cache.sizes()["pods"] == 2


def test_workers_of_a_job_are_those_of_its_uid():
    cache = ClusterCache()
    cache.store(Kind.POD, pod("a-worker-0", 3, uid="old"))
    cache.store(Kind.POD, pod("a-worker-1", 4, uid="uid-a"))
    cache.store(Kind.POD, pod("b-worker-0", 5, job="b", uid="uid-b"))
    assert [p["metadata"]["name"] for p in cache.workers_of("ns/a", "uid-a")] == ["a-worker-1"]


def test_a_listing_after_priming_is_held_and_asks_for_a_fresh_priming():
    """kopf lists again (events of type None) when a watch's resourceVersion is gone, e.g. after etcd
    restarts: a job created meanwhile is in that listing only, and a deletion meanwhile in none."""
    cache = ClusterCache()
    cache.observe(Kind.POD, None, pod("a-worker-0", 3))  # kopf's first listing, before any priming
    assert not cache.relisted and len(cache.workers()) == 1
    cache.primed = True
    cache.observe(Kind.POD, None, pod("a-worker-1", 9))
    assert cache.relisted
    assert sorted(p["metadata"]["name"] for p in cache.workers()) == ["a-worker-0", "a-worker-1"]
    cache.relisted = False
    cache.observe_other_pod(None, {"metadata": {"name": "daemon", "namespace": "kube-system",
                                                "resourceVersion": "11"},
                                   "spec": {"nodeName": "n1", "containers": []}, "status": {"phase": "Running"}})
    assert cache.relisted
