import copy
import threading
import time

import pytest

from stretto import contracts
from stretto.scheduler.binder import BindError, binding_body
from stretto.scheduler.cluster_cache import ClusterCache, node_capacity
from stretto.scheduler.demand import pod_demand
from stretto.scheduler.extender import NOT_READY, Extender
from stretto.scheduler.metrics import ExtenderMetrics
from stretto.scheduler.model import BookingState
from stretto.scheduler.pending_pods import PendingPods
from stretto.scheduler.testing import RecordingBinder, make_node, make_pod, share_annotations
from stretto.scheduler.wire import ExtenderArgs, ExtenderBindingArgs

GIB = 2**30


def setup(*nodes, ready=True, pending=None):
    cache = ClusterCache()
    cache.replace_nodes(node_capacity(n) for n in nodes or [make_node("n1")])
    binder = RecordingBinder()
    metrics = ExtenderMetrics()
    extender = Extender(cache=cache, binder=binder, metrics=metrics, ready=lambda: ready, pending=pending)
    return extender, cache, binder, metrics


def bind_args(pod, node="n1"):
    m = pod["metadata"]
    return ExtenderBindingArgs(PodName=m["name"], PodNamespace=m["namespace"], PodUID=m["uid"], Node=node)


def failures(metrics, reason):
    return metrics.registry.get_sample_value("stretto_extender_bind_failures_total", {"reason": reason})


def test_filter_then_bind_in_one_write_carrying_the_devices():
    pending = PendingPods()
    extender, cache, binder, metrics = setup(pending=pending)
    pod = make_pod("w0", gpus=2)
    pending.observe(pod)                                # the watch has shown the pod
    result = extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1"]))
    assert result.NodeNames == ["n1"] and not result.Error
    assert extender.bind(bind_args(pod)).Error == ""
    uid = pod["metadata"]["uid"]
    assert binder.bound == [("default", "w0", uid, "n1")]
    assert binder.annotations == {uid: {contracts.ANNOTATION_GPU_IDS: "0,1"}}
    assert binder.reads == []                           # the demand came from the watch's copy
    assert pending.get(uid) is None                     # bound: no longer pending
    assert cache.booking(uid).state is BookingState.BOUND
    assert metrics.registry.get_sample_value("stretto_extender_binds_total", {"gpu_mode": "whole"}) == 1


def test_bind_reads_pod_when_filter_did_not_see_it_and_checks_uid():
    extender, _, binder, metrics = setup()
    pod = binder.add(make_pod("w1", gpu_share=1, annotations=share_annotations(10 * GIB, 25)))
    assert extender.bind(bind_args(pod)).Error == ""
    assert binder.annotations[pod["metadata"]["uid"]] == {
        contracts.ANNOTATION_GPU_IDS: "0", contracts.ANNOTATION_GPU_MEMORY: str(10 * GIB),
        contracts.ANNOTATION_GPU_MIN_UTIL: "25", contracts.ANNOTATION_GPU_MAX_UTIL: "100",
    }
    stale = dict(bind_args(pod).model_dump(), PodUID="another-uid")
    result = extender.bind(ExtenderBindingArgs(**stale))
    assert "has uid" in result.Error and len(binder.bound) == 1
    assert failures(metrics, "malformed") == 1


@pytest.mark.parametrize(
    ("pod", "node", "binder_setup", "want_error", "want_reason"),
    [
        (make_pod("big", gpus=9), "n1", None, "pod needs 9 GPUs, node has 8", "no_fit"),
        (make_pod("ghost", gpus=1), "nowhere", None, "not in the extender's cache", "no_fit"),
        (make_pod("plan", gpus=1, annotations={contracts.ANNOTATION_PLANNED_NODE: "n2"}), "n1", None,
         "planned pod default/plan for node n2, not n1", "plan_mismatch"),
        (make_pod("inv", gpu_share=1), "n1", None, "needs the annotation", "no_fit"),
        (make_pod("409", gpus=1), "n1", {"fail_bind": BindError("conflict", definite=True)}, "conflict",
         "api_error"),
    ],
    ids=lambda v: v["metadata"]["name"] if isinstance(v, dict) and "metadata" in v else None,
)
def test_bind_refusals_book_nothing(pod, node, binder_setup, want_error, want_reason):
    extender, cache, binder, metrics = setup()
    binder.add(pod)
    for key, value in (binder_setup or {}).items():
        setattr(binder, key, value)
    result = extender.bind(bind_args(pod, node))
    assert want_error in result.Error
    assert cache.bookings() == [] and cache.view("n1").free_whole_gpus == 8
    assert failures(metrics, want_reason) == 1
    if want_reason != "api_error":
        assert binder.bound == []


def test_bind_of_unknown_pod_is_an_error():
    extender, _, binder, _ = setup()
    result = extender.bind(ExtenderBindingArgs(PodName="x", PodNamespace="y", PodUID="u", Node="n1"))
    assert "not found" in result.Error and binder.bound == []


def test_binding_timeout_resolved_by_reading_the_pod():
    extender, cache, binder, _ = setup()
    pod = binder.add(make_pod("slow", gpus=4))
    binder.fail_bind = BindError("timeout", definite=False)
    pod["spec"]["nodeName"] = "n1"               # it did go through
    assert extender.bind(bind_args(pod)).Error == ""
    assert cache.booking(pod["metadata"]["uid"]).state is BookingState.BOUND

    other = binder.add(make_pod("lost", gpus=4))
    assert "timeout" in extender.bind(bind_args(other)).Error
    assert cache.booking(other["metadata"]["uid"]) is None   # read back unbound: freed

    pending = PendingPods()
    extender, cache, binder, _ = setup(pending=pending)
    binder.fail_bind = BindError("timeout", definite=False)
    third = binder.add(make_pod("dark", gpus=4))
    pending.observe(third)                                       # the demand is known from the watch
    binder.fail_read = BindError("apiserver down", definite=False)
    assert "outcome unknown" in extender.bind(bind_args(third)).Error
    assert cache.booking(third["metadata"]["uid"]).state is BookingState.UNCERTAIN  # held: no double booking


def test_not_ready_refuses_filter_and_bind():
    extender, _, binder, _ = setup(ready=False)
    pod = make_pod("w", gpus=1)
    assert extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1"])).Error == NOT_READY
    assert extender.bind(bind_args(pod)).Error == NOT_READY and binder.bound == []


def test_filter_non_cache_form_echoes_node_objects():
    nodes = [make_node("n1", gpus=1), make_node("n2", gpus=4)]
    extender, *_ = setup(*nodes)
    result = extender.filter(ExtenderArgs(Pod=make_pod("w", gpus=2), Nodes={"items": nodes}))
    assert result.NodeNames is None and [n["metadata"]["name"] for n in result.Nodes.items] == ["n2"]
    assert result.FailedAndUnresolvableNodes == {"n1": "stretto: pod needs 2 GPUs, node has 1"}


def test_filter_answers_only_the_best_fitting_nodes():
    extender, cache, *_ = setup(make_node("n1"), make_node("n2"), make_node("n3"), make_node("n4"))
    for node in ("n2", "n3"):  # two equally full nodes; n1 and n4 empty
        cache.reserve(pod_demand(make_pod(f"x-{node}", gpus=6, cpu="48", memory="384Gi")), node)
    pod = make_pod("w", gpus=2, cpu="8", memory="32Gi")
    result = extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1", "n2", "n3", "n4", "zz"]))
    assert result.NodeNames == ["n2", "n3"]  # both fill up; the empty nodes stay whole for big jobs
    assert set(result.FailedNodes) == {"zz"}  # the empty nodes are not failed, only outpacked
    cache.reserve(pod_demand(make_pod("y", gpus=2, cpu="8", memory="32Gi")), "n2")
    assert extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1", "n2", "n3"])).NodeNames == ["n3"]
    big = make_pod("big", gpus=8)
    assert extender.filter(ExtenderArgs(Pod=big, NodeNames=["n1", "n2", "n3", "n4"])).NodeNames == ["n1", "n4"]


def test_concurrent_binds_never_give_a_gpu_twice():
    extender, cache, binder, _ = setup(make_node("n1", gpus=8))
    pods = [binder.add(make_pod(f"p{i}", gpus=3)) for i in range(6)]
    gate = threading.Barrier(2, timeout=5)   # the first two binds reach the API together
    calls = {"n": 0}
    lock = threading.Lock()

    def before_bind() -> None:
        with lock:
            calls["n"] += 1
            first_two = calls["n"] <= 2
        if first_two:
            gate.wait()

    binder.before_bind = before_bind
    results: dict[str, str] = {}
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(p["metadata"]["name"],
                                                                        extender.bind(bind_args(p)).Error))
               for p in pods]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sum(1 for e in results.values() if not e) == 2 and len(binder.bound) == 2
    ids = [i for ann in binder.annotations.values()
           for i in contracts.parse_gpu_ids(ann[contracts.ANNOTATION_GPU_IDS])]
    assert len(ids) == len(set(ids)) == 6
    assert cache.view("n1").free_whole_gpus == 2


def test_the_binding_carries_the_uid_precondition_and_the_annotations():
    assert binding_body("ns", "p", "u1", "n1", {"a": "b"}) == {
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": {"a": "b"}},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    assert "annotations" not in binding_body("ns", "p", "u1", "n1")["metadata"]


def test_a_retried_bind_is_answered_by_the_first_not_refused_as_booked():
    """kube-scheduler retries a bind after its httpTimeout: the retry waits for the bind under way and
    gets its answer; a retry after the bind took effect succeeds again. One Binding either way."""
    extender, _, binder, metrics = setup()
    pod = binder.add(make_pod("slowbind", gpus=1))
    entered, release = threading.Event(), threading.Event()

    def slow_api() -> None:
        entered.set()
        release.wait(5)

    binder.before_bind = slow_api
    answers: list[str] = []
    first = threading.Thread(target=lambda: answers.append(extender.bind(bind_args(pod)).Error))
    first.start()
    assert entered.wait(5)
    retry = threading.Thread(target=lambda: answers.append(extender.bind(bind_args(pod)).Error))
    retry.start()
    time.sleep(0.2)
    release.set()
    first.join(5)
    retry.join(5)
    assert answers == ["", ""] and len(binder.bound) == 1
    assert extender.bind(bind_args(pod)).Error == "" and len(binder.bound) == 1
    assert extender.bind(bind_args(pod, "n2")).Error                       # but never a second node
    assert metrics.registry.get_sample_value("stretto_extender_binds_total", {"gpu_mode": "whole"}) == 1


def test_a_full_planned_node_is_confirmed_against_the_api_before_refusing():
    # The watch still shows "gone" on n1's GPUs 0-7 although the API deleted it (kube-scheduler saw that
    # first, and would not retry the pod for minutes after a refusal): the extender lists n1's pods first.
    from stretto.scheduler.model import Booking

    listed: list[str] = []
    present = {"kept"}

    def pods_on_node(node: str) -> set[str]:
        listed.append(node)
        return set(present)

    cache = ClusterCache()
    cache.replace_nodes([node_capacity(make_node("n1"))])
    cache.observe_booking(Booking(uid="kept", node="n1", gpu_ids=(0, 1, 2, 3)))
    cache.observe_booking(Booking(uid="gone", node="n1", gpu_ids=(4, 5, 6, 7)))
    extender = Extender(cache=cache, binder=RecordingBinder(), pods_on_node=pods_on_node)
    pod = make_pod("w", gpus=1, annotations={contracts.ANNOTATION_PLANNED_NODE: "n1"})
    assert extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1"])).NodeNames == ["n1"]
    assert listed == ["n1"] and cache.booking("gone") is None and cache.booking("kept") is not None

    present.add("other")  # now every booking is real: the node stays full and the pod waits
    cache.observe_booking(Booking(uid="other", node="n1", gpu_ids=(4, 5, 6, 7)))
    result = extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1"]))
    assert result.NodeNames == [] and "0 of 8 GPUs free" in result.FailedNodes["n1"]


def test_a_booking_made_after_the_list_is_kept():
    from stretto.scheduler.model import Booking

    cache = ClusterCache(clock=lambda: 10.0)
    cache.replace_nodes([node_capacity(make_node("n1"))])
    cache.observe_booking(Booking(uid="old", node="n1", gpu_ids=(0,)))
    inflight = cache.reserve(pod_demand(make_pod("inflight", gpus=1)), "n1")
    assert cache.confirm_node("n1", set(), listed_at=5.0) == 1  # "old" is gone; the bind in flight stays
    assert cache.booking(inflight.uid) is not None and cache.booking("old") is None


def test_a_forged_filter_cannot_change_what_bind_books():
    """A caller POSTs /filter with a copy of a real pending 1-GPU pod stripped of its GPU limit, then
    /bind to a full node: the bind decides from the API server's pod, so the node is not overbooked."""
    pending = PendingPods()
    extender, cache, binder, _ = setup(pending=pending)
    cache.reserve(pod_demand(make_pod("filler", gpus=8)), "n1")
    real = binder.add(make_pod("w", gpus=1))
    forged = copy.deepcopy(real)
    forged["spec"]["containers"][0]["resources"] = {}
    for watched in (False, True):                     # the watch has (not) shown the real pod yet
        if watched:
            pending.observe(real)
        extender.filter(ExtenderArgs(Pod=forged, NodeNames=["n1"]))
        assert "0 of 8 GPUs free, pod needs 1" in extender.bind(bind_args(real)).Error
    assert binder.bound == [] and cache.view("n1").free_whole_gpus == 0
    assert binder.reads == [("default", "w")]        # read once, before the watch showed it


@pytest.mark.parametrize(
    ("limits", "want"),
    [
        ({contracts.GPU_RESOURCE: "-1"}, "negative quantity"),
        ({"cpu": "-500m"}, "negative quantity"),
        ({"cpu": "9" * 400}, "beyond any node"),
        ({"memory": "1e999999999"}, "invalid quantity"),
        ({contracts.GPU_RESOURCE: "x" * 10_000}, "characters)"),
    ],
    ids=["negative-gpus", "negative-cpu", "400-digit-cpu", "huge-exponent", "10k-garbage"],
)
def test_absurd_quantities_are_malformed_requests_with_short_messages(limits, want):
    extender, cache, binder, _ = setup()
    pod = make_pod("bad")
    pod["spec"]["containers"][0]["resources"] = {"limits": limits}
    binder.add(pod)
    filtered = extender.filter(ExtenderArgs(Pod=pod, NodeNames=["n1"]))
    assert want in filtered.Error and "malformed request" in filtered.Error and len(filtered.Error) < 300
    bound = extender.bind(bind_args(pod))
    assert want in bound.Error and len(bound.Error) < 300
    assert binder.bound == [] and cache.booking(pod["metadata"]["uid"]) is None


def test_a_pod_whose_planned_node_fits_is_answered_with_that_node_alone():
    extender, cache, *_ = setup(make_node("n1"), make_node("n2"), make_node("n3"))
    planned = make_pod("p", gpus=2, annotations={contracts.ANNOTATION_PLANNED_NODE: "n2"})
    fits = extender.filter(ExtenderArgs(Pod=planned, NodeNames=["n1", "n2", "n3"]))
    assert fits.NodeNames == ["n2"] and fits.FailedNodes == {} and fits.FailedAndUnresolvableNodes == {}
    cache.reserve(pod_demand(make_pod("filler", gpus=8)), "n2")             # now the plan cannot be honoured:
    full = extender.filter(ExtenderArgs(Pod=planned, NodeNames=["n1", "n2", "n3"]))   # every node says why
    assert full.NodeNames == [] and full.FailedNodes == {"n2": "stretto: 0 of 8 GPUs free, pod needs 2"}
    assert set(full.FailedAndUnresolvableNodes) == {"n1", "n3"}
