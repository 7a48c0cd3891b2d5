import pytest

from stretto import contracts
from stretto.scheduler.demand import MalformedPod, pod_booking, pod_demand
from stretto.scheduler.model import ShareSpec
from stretto.scheduler.testing import make_pod, share_annotations

GIB = 2**30


@pytest.mark.parametrize(
    ("pod", "want_whole", "want_share", "want_cpu", "want_mem", "want_planned", "want_invalid"),
    [
        (make_pod("a", gpus=2, cpu="8", memory="64Gi"), 2, None, 8000, 64 * GIB, None, None),
        (make_pod("b", cpu="500m"), 0, None, 500, 0, None, None),
        (make_pod("c", gpus=1, annotations={contracts.ANNOTATION_PLANNED_NODE: "gpu-3"}),
         1, None, 0, 0, "gpu-3", None),
        (make_pod("d", gpu_share=1, annotations=share_annotations(10 * GIB, 30, 80)),
         0, ShareSpec(10 * GIB, 30, 80), 0, 0, None, None),
        (make_pod("e", gpu_share=1, annotations={contracts.ANNOTATION_GPU_MEMORY: "5Gi"}),
         0, ShareSpec(5 * GIB, 0, 100), 0, 0, None, None),
        (make_pod("f", gpus=1, gpu_share=1, annotations=share_annotations(GIB)), 0, None, 0, 0, None, "both"),
        (make_pod("g", gpu_share=2, annotations=share_annotations(GIB)), 0, None, 0, 0, None, "must be 1"),
        (make_pod("h", gpu_share=1), 0, None, 0, 0, None, "needs the annotation"),
        (make_pod("i", gpu_share=1, annotations=share_annotations(GIB, 60, 40)),
         0, None, 0, 0, None, "empty"),
        (make_pod("j", gpu_share=1, annotations=share_annotations(GIB, 0, 120)),
         0, None, 0, 0, None, "0..100"),
        (make_pod("k", gpu_share=1, annotations={contracts.ANNOTATION_GPU_MEMORY: "lots"}),
         0, None, 0, 0, None, "must be bytes"),
        (make_pod("l", gpu_share=1,
                  annotations={**share_annotations(GIB), contracts.ANNOTATION_GPU_MIN_UTIL: "x"}),
         0, None, 0, 0, None, "whole percent"),
    ],
    ids=lambda v: v["metadata"]["name"] if isinstance(v, dict) else None,
)
def test_pod_demand(pod, want_whole, want_share, want_cpu, want_mem, want_planned, want_invalid):
    demand = pod_demand(pod)
    assert demand.uid == pod["metadata"]["uid"]
    if want_invalid is None:
        assert demand.invalid_reason is None
        assert (demand.whole_gpus, demand.share) == (want_whole, want_share)
    else:
        assert want_invalid in (demand.invalid_reason or "")
    assert (demand.cpu_millis, demand.memory_bytes, demand.planned_node) == (want_cpu, want_mem, want_planned)


def test_pod_demand_counts_init_containers_and_overhead():
    pod = make_pod("w", gpus=1, cpu="1", memory="1Gi")
    pod["spec"]["containers"].append({"name": "side", "resources": {"requests": {"cpu": "1"}}})
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {"limits": {contracts.GPU_RESOURCE: "4"}}}]
    pod["spec"]["overhead"] = {"cpu": "250m"}
    demand = pod_demand(pod)
    assert (demand.whole_gpus, demand.cpu_millis, demand.memory_bytes) == (4, 2250, GIB)


@pytest.mark.parametrize(
    "pod",
    [
        None, [], "pod", {}, {"metadata": {"name": "x", "namespace": "y"}},
        {"metadata": {"name": "x", "namespace": "y", "uid": 7}},
        {"metadata": {"name": "x", "namespace": "y", "uid": "u"}, "spec": {"containers": "nope"}},
        {"metadata": {"name": "x", "namespace": "y", "uid": "u"},
         "spec": {"containers": [{"resources": {"limits": {contracts.GPU_RESOURCE: "two"}}}]}},
        {"metadata": {"name": "x", "namespace": "y", "uid": "u", "annotations": ["a"]}},
    ],
    ids=["none", "list", "str", "empty", "no-uid", "uid-int", "containers-str", "bad-quantity", "annot-list"],
)
def test_pod_demand_malformed(pod):
    with pytest.raises(MalformedPod):
        pod_demand(pod)


@pytest.mark.parametrize(
    ("pod", "want"),
    [
        (make_pod("pending", gpus=2), None),
        (make_pod("done", gpus=2, node="n1", phase="Succeeded"), None),
        (make_pod("failed", gpus=2, node="n1", phase="Failed"), None),
        (make_pod("ids", gpus=2, node="n1", phase="Running",
                  annotations={contracts.ANNOTATION_GPU_IDS: "3,1"}),
         {"gpu_ids": (1, 3), "anonymous_gpus": 0, "share": None}),
        (make_pod("anon", gpus=2, node="n1", phase="Running"),
         {"gpu_ids": (), "anonymous_gpus": 2, "share": None}),
        (make_pod("badids", gpus=2, node="n1", annotations={contracts.ANNOTATION_GPU_IDS: "1,1"}),
         {"gpu_ids": (), "anonymous_gpus": 2, "share": None}),
        (make_pod("share", gpu_share=1, node="n1",
                  annotations={**share_annotations(GIB, 20), contracts.ANNOTATION_GPU_IDS: "5"}),
         {"gpu_ids": (5,), "anonymous_gpus": 0, "share": ShareSpec(GIB, 20, 100)}),
        (make_pod("share-noid", gpu_share=1, node="n1", annotations=share_annotations(GIB)),
         {"gpu_ids": (), "anonymous_gpus": 1, "share": None}),
        (make_pod("cpu-only", cpu="2", node="n1"), {"gpu_ids": (), "anonymous_gpus": 0, "share": None}),
    ],
    ids=lambda v: v["metadata"]["name"] if isinstance(v, dict) and "metadata" in v else None,
)
def test_pod_booking(pod, want):
    booking = pod_booking(pod)
    if want is None:
        assert booking is None
        return
    assert booking is not None and booking.node == "n1" and booking.uid == pod["metadata"]["uid"]
    assert {k: getattr(booking, k) for k in want} == want
