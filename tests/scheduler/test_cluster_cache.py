import contextlib
import threading
from collections import Counter

import pytest

from stretto import contracts
from stretto.scheduler.cluster_cache import ClusterCache, NodeCapacity, ReservationError, node_capacity
from stretto.scheduler.model import DEFAULT_GPU_MEMORY_MIB, MIB, Booking, BookingState, PodDemand, ShareSpec
from stretto.scheduler.testing import make_node

GIB = 2**30


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def cache_with(*names, gpus=8, mem_mib=81920, clock=None):
    cache = ClusterCache(clock=clock) if clock else ClusterCache()
    cache.replace_nodes(NodeCapacity(n, gpus, mem_mib * MIB, 96_000, 768 * GIB) for n in names)
    return cache


def demand(uid, gpus=0, share=None):
    return PodDemand("ns", uid, uid, whole_gpus=gpus, share=share)


@pytest.mark.parametrize(
    ("node", "want"),
    [
        (make_node("a", gpus=4, cpu="32", memory="256Gi", gpu_memory_mib=40960),
         NodeCapacity("a", 4, 40960 * MIB, 32_000, 256 * GIB)),
        (make_node("b"), NodeCapacity("b", 8, DEFAULT_GPU_MEMORY_MIB * MIB, 96_000, 768 * GIB)),
        ({"metadata": {"name": "c"}}, NodeCapacity("c", 0, DEFAULT_GPU_MEMORY_MIB * MIB, 0, 0)),
        ({"metadata": {}}, None),
        ({"metadata": {"name": "d", "labels": {contracts.GPU_MEMORY_LABEL: "lots"}}}, None),
        ("not a node", None),
    ],
    ids=["labelled", "default-80GiB", "no-status", "no-name", "bad-label", "string"],
)
def test_node_capacity(node, want):
    assert node_capacity(node) == want


def test_reserve_books_devices_and_release_frees_them():
    cache = cache_with("n1")
    first = cache.reserve(demand("a", 3), "n1")
    second = cache.reserve(demand("b", 3), "n1")
    assert (first.gpu_ids, second.gpu_ids) == ((0, 1, 2), (3, 4, 5))
    assert first.state is BookingState.RESERVED
    with pytest.raises(ReservationError, match="2 of 8 GPUs free, pod needs 3"):
        cache.reserve(demand("c", 3), "n1")
    cache.release("a")
    assert cache.reserve(demand("c", 3), "n1").gpu_ids == (0, 1, 2)


@pytest.mark.parametrize(
    ("node", "uid", "reason"),
    [("ghost", "b", "not in the extender's cache"), ("n1", "a", "already holds a booking")],
)
def test_reserve_refusals(node, uid, reason):
    cache = cache_with("n1")
    cache.observe_booking(Booking(uid="a", node="n1", gpu_ids=(0,)))
    with pytest.raises(ReservationError, match=reason):
        cache.reserve(demand(uid, 1), node)


def test_concurrent_reservations_never_share_a_device():
    cache = cache_with("n1", "n2")
    start = threading.Barrier(16)
    won: list[Booking] = []
    lost: list[str] = []
    lock = threading.Lock()

    def bind(i: int) -> None:
        start.wait()
        try:
            booking = cache.reserve(demand(f"p{i}", 2), f"n{1 + i % 2}")
        except ReservationError as exc:
            with lock:
                lost.append(str(exc))
        else:
            with lock:
                won.append(booking)

    threads = [threading.Thread(target=bind, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(won) == 8 and len(lost) == 8   # 2 nodes x 8 GPUs / 2 per pod
    held = Counter((b.node, i) for b in won for i in b.gpu_ids)
    assert max(held.values()) == 1 and len(held) == 16


def test_concurrent_shares_respect_memory_and_utilization_budgets():
    cache = cache_with("n1", gpus=2)
    start = threading.Barrier(12)
    won: list[Booking] = []

    def bind(i: int) -> None:
        start.wait()
        with contextlib.suppress(ReservationError):
            won.append(cache.reserve(demand(f"s{i}", share=ShareSpec(20 * GIB, 30)), "n1"))

    threads = [threading.Thread(target=bind, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    per_device = Counter(b.gpu_ids[0] for b in won)
    assert per_device == {0: 3, 1: 3}    # 3 x 30% <= 100%; a fourth would make 120%
    view = cache.view("n1")
    assert view is not None
    for device in view.devices:
        assert device.shared_memory_bytes <= view.gpu_memory_bytes
        assert device.shared_min_utilization <= 100
    with pytest.raises(ReservationError, match="0 of 2 GPUs free"):
        cache.reserve(demand("w", 1), "n1")   # shared devices are never given whole


def test_whole_device_is_never_shared_and_share_keeps_idle_devices_whole():
    cache = cache_with("n1", gpus=2)
    cache.reserve(demand("w", 1), "n1")
    s1 = cache.reserve(demand("s1", share=ShareSpec(GIB)), "n1")
    s2 = cache.reserve(demand("s2", share=ShareSpec(GIB)), "n1")
    assert s1.gpu_ids == s2.gpu_ids == (1,)


def test_watch_events_versus_bookings_in_flight():
    clock = FakeClock()
    cache = cache_with("n1", clock=clock)
    cache.reserve(demand("a", 2), "n1")
    cache.observe_unbound("a")                     # an older event: the pod still pending
    assert cache.booking("a") is not None          # a bind in flight is not undone by it
    cache.mark("a", BookingState.BOUND)
    cache.observe_unbound("a")
    assert cache.booking("a") is not None
    cache.observe_booking(Booking(uid="a", node="n1", gpu_ids=(0, 1)))
    assert cache.booking("a").state is BookingState.OBSERVED
    cache.release("a")                             # rollback never frees what the API shows bound
    assert cache.booking("a") is not None
    cache.forget_pod("a")                          # deleted or finished
    assert cache.booking("a") is None and cache.view("n1").free_whole_gpus == 8


def test_uncertain_booking_is_held_until_the_watch_or_a_retry_decides():
    cache = cache_with("n1")
    cache.reserve(demand("a", 8), "n1")
    cache.mark("a", BookingState.UNCERTAIN)
    with pytest.raises(ReservationError):
        cache.reserve(demand("b", 1), "n1")
    cache.observe_unbound("a")                     # the watch shows it never got bound
    assert cache.booking("a") is None
    cache.reserve(demand("a", 8), "n1")
    cache.mark("a", BookingState.UNCERTAIN)
    assert cache.reserve(demand("a", 4), "n1").gpu_ids == (0, 1, 2, 3)  # the scheduler's retry supersedes it


def test_replace_pods_keeps_bookings_the_list_predates():
    clock = FakeClock()
    cache = cache_with("n1", clock=clock)
    cache.observe_booking(Booking(uid="old", node="n1", gpu_ids=(7,)))   # deleted while the watch was down
    cache.reserve(demand("early", 1), "n1")
    cache.mark("early", BookingState.BOUND)                               # bound before the list began
    clock.t = 200.0
    cache.reserve(demand("late", 1), "n1")
    cache.mark("late", BookingState.BOUND)                                # bound during the list
    cache.reserve(demand("flying", 1), "n1")                              # bind still in flight
    cache.replace_pods([Booking(uid="listed", node="n1", gpu_ids=(5,), cpu_millis=1000)], listed_at=150.0)
    assert {b.uid for b in cache.bookings()} == {"listed", "late", "flying"}
    view = cache.view("n1")
    assert view.cpu_requested == 1000
    assert not view.devices[7].whole and view.devices[5].whole


def test_node_changes_rebuild_views_and_keep_bookings():
    cache = cache_with("n1")
    cache.observe_booking(Booking(uid="a", node="n1", gpu_ids=(6, 7), anonymous_gpus=1))
    assert cache.view("n1").free_whole_gpus == 5
    cache.remove_node("n1")
    assert cache.view("n1") is None and cache.booking("a") is not None
    cache.upsert_node(NodeCapacity("n1", 4, 81920 * MIB, 1, 1))       # shrank: devices 6, 7 are gone
    assert cache.view("n1").free_whole_gpus == 3
    assert cache.node_count() == 1 and cache.booked_gpus() == 1.0
