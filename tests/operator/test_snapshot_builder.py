"""From cluster objects to the core's snapshot, through a real round, to per-job plans."""

from __future__ import annotations

from typing import Any

import pytest

from stretto import contracts
from stretto.core.profile_loading import load_builtin_profiles
from stretto.core.rounds import RoundConfig, build_plugins, run_round
from stretto.devcluster.fake_nodes import NodeShape, node_manifest
from stretto.operator.snapshot_builder import (
    build_snapshot,
    current_allocations,
    node_state,
    plans_from_decision,
)

BOOK = load_builtin_profiles()


def job(name: str, *, min_workers: int = 1, max_workers: int = 1, gpus: int = 1, created: str = "2026-01-01T00:00:00Z",
        status: dict[str, Any] | None = None, model: str | None = "resnet18") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "creationTimestamp": created},
        "spec": {"workers": {"min": min_workers, "max": max_workers}, "gpusPerWorker": gpus, "tenant": "t",
                 "work": {"epochs": 2, "samplesPerEpoch": 500},
                 "adaptation": {"mode": "gns", "batchSizes": [32, 64], "initialBatchSize": 32},
                 **({"profile": {"model": model}} if model else {}),
                 "template": {"spec": {"containers": [{"name": "t", "image": "i"}]}}},
        **({"status": status} if status else {}),
    }


def ready_node(name: str, gpus: int = 8) -> dict[str, Any]:
    node = node_manifest(name, NodeShape(gpus=gpus))
    node["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    return node


def bound_pod(job_name: str, index: int, node: str, gpu_ids: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{job_name}-worker-{index}", "namespace": "ns",
                     "labels": {contracts.LABEL_JOB: job_name, contracts.LABEL_WORKER_INDEX: str(index)},
                     "annotations": {contracts.ANNOTATION_GPU_IDS: gpu_ids}},
        "spec": {"nodeName": node, "containers": [{"name": "t", "resources": {
            "requests": {"cpu": "12", "memory": "96Gi"}, "limits": {contracts.GPU_RESOURCE: "1"}}}]},
        "status": {"phase": "Running"},
    }


def test_nodes_become_node_states_and_unusable_ones_are_left_out():
    state = node_state(ready_node("n1"))
    assert state is not None and (state.gpus, state.cpus, state.memory_gib) == (8, 96.0, 768.0)
    not_ready = node_manifest("n2", NodeShape())
    assert node_state(not_ready) is None
    cordoned = ready_node("n3") | {"spec": {"unschedulable": True}}
    assert node_state(cordoned) is None


def test_bound_pods_become_the_previous_allocation():
    allocations = current_allocations([bound_pod("a", 0, "n1", "0"), bound_pod("a", 1, "n2", "3")])
    allocation = allocations["ns/a"]
    assert allocation.gpus == 2 and allocation.nodes == ("n1", "n2")
    assert allocation.workers[0].cpus == 12 and allocation.workers[0].memory_gib == 96


def test_job_state_carries_spec_progress_and_accounting():
    status = {"phase": "Running", "progress": {"samplesDone": 250, "batchSize": 64,
                                               "batchSizeHistory": [[0, 32], [1, 64]]},
              "accounting": {"attainedGpuSeconds": 120, "runSeconds": 60, "firstStart": "2026-01-01T00:01:00Z"}}
    snapshot = build_snapshot(now_s=0, round_index=3, round_seconds=60, jobs=[job("a", max_workers=4, status=status)],
                              nodes=[ready_node("n1")], pods=[], book=BOOK)
    state = snapshot.jobs[0]
    assert state.job_id == "ns/a" and state.model == "resnet18" and state.tenant == "t"
    assert (state.min_workers, state.max_workers, state.total_samples) == (1, 4, 1000)
    assert (state.samples_done, state.batch_size, state.batch_size_history) == (250, 64, ((0, 32), (1, 64)))
    assert state.attained_gpu_seconds == 120 and state.first_start_s is not None
    assert state.adaptation.value == "gns"


def test_an_unknown_model_gets_the_generic_prior_not_another_models_profile():
    snapshot = build_snapshot(now_s=0, round_index=0, round_seconds=60, jobs=[job("a", model="mystery-net")],
                              nodes=[], pods=[], book=BOOK)
    state = snapshot.jobs[0]
    assert state.model == "mystery-net" and state.profile.default_batch_size == 32  # the job's starting size
    assert state.profile.throughput(32, 1) != BOOK.get("resnet50").throughput(32, 1)


def test_finished_jobs_are_not_scheduled():
    jobs = [job("done", status={"phase": "Succeeded"}), job("live")]
    snapshot = build_snapshot(now_s=0, round_index=0, round_seconds=60, jobs=jobs, nodes=[], pods=[], book=BOOK)
    assert [j.job_id for j in snapshot.jobs] == ["ns/live"]


@pytest.mark.parametrize("packer", ["proportional", "synergy-tune"])
def test_a_round_on_the_snapshot_gives_plans_within_each_jobs_range(packer):
    jobs = [job("first", min_workers=1, max_workers=6, created="2026-01-01T00:00:00Z"),
            job("rigid", min_workers=4, max_workers=4, gpus=2, created="2026-01-01T00:01:00Z"),
            job("late", min_workers=6, max_workers=6, gpus=2, created="2026-01-01T00:02:00Z")]
    snapshot = build_snapshot(now_s=1e9, round_index=0, round_seconds=60, jobs=jobs,
                              nodes=[ready_node("n1"), ready_node("n2")], pods=[], book=BOOK)
    config = RoundConfig.model_validate({"predictor": {"name": "current-batch"}, "policy": {"name": "elastic"},
                                         "packer": {"name": packer}})
    plans = plans_from_decision(run_round(snapshot, build_plugins(config)), snapshot)
    assert plans["ns/rigid"].workers == 4 and plans["ns/rigid"].gpus == 8
    assert plans["ns/first"].workers == 6 and plans["ns/first"].gpus == 6  # grows to its max into idle GPUs
    assert plans["ns/late"].workers == 0 and "waiting" in plans["ns/late"].reason
    assert len(plans["ns/rigid"].nodes) == 4 and plans["ns/rigid"].cpu_per_worker > 0


def test_the_previous_allocation_is_in_worker_order_and_stays_put():
    pods = [bound_pod("a", 2, "n3", "1"), bound_pod("a", 0, "n1", "0"), bound_pod("a", 1, "n2", "3")]
    assert current_allocations(pods)["ns/a"].nodes == ("n1", "n2", "n3")
    snapshot = build_snapshot(now_s=0, round_index=1, round_seconds=60, jobs=[job("a", max_workers=3)],
                              nodes=[ready_node("n1")], pods=pods, book=BOOK)
    assert snapshot.workers_can_move is False
