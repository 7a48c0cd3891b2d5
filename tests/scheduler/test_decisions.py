import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stretto.scheduler import decisions
from stretto.scheduler.cluster_cache import NodeCapacity, ShapeIds, build_view
from stretto.scheduler.model import MIB, Booking, PodDemand, ShareSpec

GIB = 2**30


def node(name="n1", *, gpus=8, mem_mib=81920, cpu=96_000, memory=768 * GIB, bookings=()):
    return build_view(NodeCapacity(name, gpus, mem_mib * MIB, cpu, memory), bookings)


def whole(*ids, uid="x", cpu=0, memory=0):
    return Booking(uid=uid, node="n1", gpu_ids=tuple(ids), cpu_millis=cpu, memory_bytes=memory)


def shared(index, mem_gib, min_util=0, uid="s"):
    return Booking(uid=uid, node="n1", gpu_ids=(index,), share=ShareSpec(mem_gib * GIB, min_util, 100))


def pod(gpus=0, share=None, planned=None, cpu=0, memory=0, invalid=None):
    return PodDemand("ns", "p", "uid-p", whole_gpus=gpus, share=share, planned_node=planned,
                     cpu_millis=cpu, memory_bytes=memory, invalid_reason=invalid)


@pytest.mark.parametrize(
    ("demand", "view", "want_ids", "want_reason"),
    [
        (pod(2), node(), (0, 1), None),
        (pod(0), node(), (), None),
        (pod(2), node(bookings=[whole(0, 2, uid="a")]), (3, 4), None),        # first contiguous run
        (pod(3), node(gpus=4, bookings=[whole(1, uid="a")]), (0, 2, 3), None),  # no run: lowest
        (pod(8), node(), tuple(range(8)), None),
        (pod(4), node(bookings=[whole(*range(6), uid="a")]), None, "2 of 8 GPUs free, pod needs 4"),
        (pod(9), node(), None, "pod needs 9 GPUs, node has 8"),
        (pod(1), node(gpus=0), None, "node has no GPUs"),
        (pod(1), node(bookings=[Booking(uid="a", node="n1", anonymous_gpus=8)]), None, "0 of 8 GPUs free"),
        (pod(2), node(bookings=[Booking(uid="a", node="n1", anonymous_gpus=6)]), (0, 1), None),
        (pod(1), node(bookings=[shared(0, 1)]), (1,), None),                  # a shared device is not whole
        (pod(1, invalid="bad share"), node(), None, "stretto: bad share"),
    ],
)
def test_pick_whole(demand, view, want_ids, want_reason):
    if want_reason is None:
        assert decisions.pick_devices(demand, view) == want_ids
    else:
        with pytest.raises(decisions.NoFit, match=want_reason):
            decisions.pick_devices(demand, view)


@pytest.mark.parametrize(
    ("share", "view", "want_ids", "want_reason"),
    [
        (ShareSpec(10 * GIB), node(), (0,), None),
        # best fit among shared devices: device 2 has less memory left than device 0
        (ShareSpec(10 * GIB), node(bookings=[shared(0, 10, uid="a"), shared(2, 60, uid="b")]), (2,), None),
        # device 2 would overflow memory (70 + 20 > 80): device 0
        (ShareSpec(20 * GIB), node(bookings=[shared(0, 10, uid="a"), shared(2, 70, uid="b")]), (0,), None),
        # min utilization budget: 80 + 30 > 100 on device 0, so the next idle device
        (ShareSpec(GIB, 30), node(bookings=[shared(0, 1, 80, uid="a")]), (1,), None),
        (ShareSpec(GIB, 20), node(bookings=[shared(0, 1, 80, uid="a")]), (0,), None),
        # whole devices are never shared
        (ShareSpec(GIB), node(gpus=2, bookings=[whole(0, 1)]), None, "no GPU has room"),
        (ShareSpec(GIB), node(gpus=2, bookings=[whole(0)]), (1,), None),
        (ShareSpec(90 * GIB), node(), None, "needs 90 GiB, devices have 80 GiB"),
        (ShareSpec(30 * GIB), node(mem_mib=24576), None, "devices have 24 GiB"),
        (ShareSpec(GIB), node(gpus=0), None, "no GPUs"),
        # an anonymous pod may hold the only idle device: do not share it
        (ShareSpec(GIB), node(gpus=2, bookings=[whole(0), Booking(uid="a", node="n1", anonymous_gpus=1)]),
         None, "no GPU has room"),
    ],
)
def test_pick_shared(share, view, want_ids, want_reason):
    if want_reason is None:
        assert decisions.pick_devices(pod(share=share), view) == want_ids
    else:
        with pytest.raises(decisions.NoFit, match=want_reason):
            decisions.pick_devices(pod(share=share), view)


def test_shared_memory_default_device_is_80_gib():
    view = build_view(NodeCapacity("n1", 1, 81920 * MIB, 1000, GIB), [shared(0, 40), shared(0, 40, uid="t")])
    with pytest.raises(decisions.NoFit):
        decisions.pick_devices(pod(share=ShareSpec(1)), view)
    assert view.share_fraction(view.devices[0]) == 1.0


def test_filter_nodes_reasons_and_plan():
    views = {
        "free": node("free"),
        "busy": node("busy", bookings=[Booking(uid="a", node="busy", gpu_ids=tuple(range(7)))]),
        "cpu": node("cpu", gpus=0),
    }
    out = decisions.filter_nodes(pod(2), ["free", "busy", "cpu", "ghost"], views)
    assert out.passed == ["free"]
    assert out.failed == {"busy": "stretto: 1 of 8 GPUs free, pod needs 2", "ghost": decisions.UNKNOWN_NODE}
    assert out.unresolvable == {"cpu": "stretto: node has no GPUs"}

    planned = decisions.filter_nodes(pod(2, planned="busy"), ["free", "busy"], views)
    assert planned.passed == []
    assert planned.unresolvable == {"free": "stretto: this round planned the pod for node busy"}
    assert planned.failed == {"busy": "stretto: 1 of 8 GPUs free, pod needs 2"}

    honoured = decisions.filter_nodes(pod(2, planned="free"), ["free", "busy"], views)
    assert honoured.passed == ["free"] and set(honoured.unresolvable) == {"busy"}

    invalid = decisions.filter_nodes(pod(invalid="pod asks for both"), ["free", "busy"], views)
    assert invalid.passed == [] and invalid.unresolvable == dict.fromkeys(["free", "busy"],
                                                                          "stretto: pod asks for both")


def test_filter_reasons_aggregate_across_nodes():
    views = {f"n{i}": node(f"n{i}", bookings=[Booking(uid="a", node=f"n{i}", gpu_ids=tuple(range(7)))])
             for i in range(50)}
    out = decisions.filter_nodes(pod(4), list(views), views)
    assert len(set(out.failed.values())) == 1  # one line in the FailedScheduling event, not fifty


@pytest.mark.parametrize(
    ("demand", "view", "want"),
    [
        (pod(8, cpu=96_000, memory=768 * GIB), node(), 10),          # fills the node exactly
        (pod(1), node(), 1),                                          # 2*(1/8) / 4 = 0.125
        (pod(1), node(bookings=[whole(*range(7), cpu=96_000, memory=768 * GIB)]), 10),
        (pod(4, cpu=48_000, memory=384 * GIB), node(), 5),
        (pod(9), node(), 0),                                          # does not fit
        (pod(1, planned="n1"), node(), 10),                           # the plan wins
        (pod(share=ShareSpec(40 * GIB)), node(gpus=1), 3),            # half a device by memory: 2*.5/4
        (pod(share=ShareSpec(8 * GIB, 50)), node(gpus=1), 3),         # half a device by utilization
        (pod(share=ShareSpec(40 * GIB)), node(gpus=1, bookings=[shared(0, 40)]), 5),  # completes the device
        (pod(cpu=200_000), node(), 3),                                # CPU over capacity counts as full
    ],
)
def test_score_node(demand, view, want):
    assert decisions.score_node(demand, view) == want


def test_score_prefers_fuller_node_and_best_fit_device():
    empty, half = node("empty"), node("half", bookings=[Booking(uid="a", node="half", gpu_ids=(0, 1, 2, 3))])
    scores = dict(decisions.score_nodes(pod(2, cpu=8000, memory=64 * GIB), ["empty", "half", "ghost"],
                                         {"empty": empty, "half": half}))
    assert scores["half"] > scores["empty"] and scores["ghost"] == 0
    assert all(0 <= s <= 10 for s in scores.values())
    # A share lands where it completes a shared device, rather than starting a new one.
    shared_node = node("s", gpus=2, bookings=[shared(0, 40)])
    assert decisions.score_node(pod(share=ShareSpec(40 * GIB)), shared_node) > \
        decisions.score_node(pod(share=ShareSpec(40 * GIB)), node("e", gpus=2))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 7), max_size=8, unique=True), st.integers(0, 3)),
                min_size=1, max_size=40),
       st.integers(0, 8), st.one_of(st.none(), st.integers(0, 39)), st.booleans())
def test_deciding_once_per_shape_answers_as_deciding_per_node(layout, gpus, planned_index, share):
    """Nodes of one shape share a verdict and a score; the planned node is decided on its own."""
    shape_ids = ShapeIds()
    views = {}
    for i, (ids, anonymous) in enumerate(layout):
        bookings = [Booking(uid=f"b{i}", node=f"n{i}", gpu_ids=tuple(ids), anonymous_gpus=anonymous)]
        views[f"n{i}"] = build_view(NodeCapacity(f"n{i}", 8, 81920 * MIB, 96_000, 768 * GIB), bookings, shape_ids)
    planned = f"n{planned_index}" if planned_index is not None and planned_index < len(layout) else None
    demand = pod(0 if share else gpus, share=ShareSpec(10 * GIB, 20, 100) if share else None, planned=planned)
    names = [*views, "unknown-node"]
    outcome = decisions.filter_nodes(demand, names, views)
    for name in names:
        try:
            decisions.check_node(demand, views.get(name))
        except decisions.NoFit as no_fit:
            assert (outcome.failed | outcome.unresolvable)[name] == no_fit.reason
        else:
            assert name in outcome.passed
    assert decisions.score_nodes(demand, names, views) == [(n, decisions.score_node(demand, views.get(n)))
                                                             for n in names]
    assert len({v.shape_id for v in views.values()}) == len({v.shape for v in views.values()})
