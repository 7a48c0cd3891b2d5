"""Workload and cluster-spec readers: the formats, and errors that name the line and the field."""

from __future__ import annotations

import json

import pytest

from stretto.core.builders import make_profile
from stretto.core.profile_loading import load_profile_book
from stretto.core.profiles import ProfileBook
from stretto.sim.batch_schedules import accordion_schedule, gns_schedule
from stretto.sim.clusters import ClusterSpecError, parse_cluster_spec
from stretto.sim.workloads import WorkloadError, read_workload, write_jsonl

BOOK = ProfileBook({"toy": make_profile("toy")})
GOOD = {"id": "a", "arrival_s": 0, "model": "toy", "batch_size": 32, "epochs": 2}


def write(tmp_path, lines) -> object:
    path = tmp_path / "w.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("second_line", "want"),
    [
        ({**GOOD, "id": "b", "workers": {"min": 3, "max": 2}}, r"w.jsonl:2: field 'workers': .*min \(3\) must not"),
        ({**GOOD, "id": "b", "batch_size": 0}, r"w.jsonl:2: field 'batch_size': Input should be greater than 0"),
        ({**GOOD, "id": "b", "gpus": 2}, r"w.jsonl:2: field 'gpus': Extra inputs are not permitted"),
        ({**GOOD, "id": "b", "epochs": "many"}, r"w.jsonl:2: field 'epochs'"),
        ({k: v for k, v in GOOD.items() if k != "model"} | {"id": "b"}, r"w.jsonl:2: field 'model': Field required"),
        (GOOD, r"w.jsonl:2: field 'id': duplicate job id 'a'"),
        ("{not json", r"w.jsonl:2: not JSON"),
        ({**GOOD, "id": "b", "model": "ghost"}, r"job 2 \(b\): field 'model': no profile for 'ghost'"),
        ({**GOOD, "id": "b", "adaptation": {"mode": "sideways"}}, r"w.jsonl:2: field 'adaptation.mode'"),
    ],
    ids=[
        "workers-range",
        "batch-size",
        "unknown-field",
        "epochs-type",
        "missing-model",
        "duplicate-id",
        "bad-json",
        "unknown-model",
        "adaptation-mode",
    ],
)
def test_bad_workload_names_line_and_field(tmp_path, second_line, want) -> None:
    with pytest.raises(WorkloadError, match=want):
        read_workload(write(tmp_path, [GOOD, second_line]), BOOK)


def test_own_format_round_trips(tmp_path) -> None:
    jobs = read_workload(write(tmp_path, ["# a comment", GOOD, "", {**GOOD, "id": "b", "tenant": "t"}]), BOOK)
    out = tmp_path / "again.jsonl"
    write_jsonl(jobs, out)
    assert read_workload(out, BOOK) == jobs


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("4x", r"expected NxG"),
        ("4x8,cpus=abc", r"cpus='abc' is not a number"),
        ("4x8,gpu=3", r"unknown option 'gpu'"),
        ("4x8,memory=lots", r"memory 'lots' is not a quantity"),
        ("0x8", r"at least one server"),
        ("4x8,cpus", r"'cpus' is not key=value"),
    ],
)
def test_bad_cluster_spec(spec, want) -> None:
    with pytest.raises(ClusterSpecError, match=want):
        parse_cluster_spec(spec)


def test_cluster_spec_forms(tmp_path, peers) -> None:
    nodes = parse_cluster_spec("4x8,cpus=24,memory=500Gi")
    assert len(nodes) == 4 and nodes[0].gpus == 8 and nodes[0].cpus == 24 and nodes[0].memory_gib == 500
    assert parse_cluster_spec("2x4")[1].cpus == 12  # 3 CPUs per GPU by default
    assert parse_cluster_spec("1x8,memory=1Ti")[0].memory_gib == 1024
    spec = tmp_path / "c.yaml"
    spec.write_text(
        "nodes:\n  - {name: a, gpus: 4, cpus: 16, memory: 128Gi}\n  - {name: b, gpus: 2, cpus: 8, memory: 64}\n"
    )
    assert [n.name for n in parse_cluster_spec(str(spec))] == ["a", "b"]
    synergy = parse_cluster_spec(str(peers / "synergy" / "clusters" / "static_trace.ini"))
    assert len(synergy) == 4 and synergy[0].cpus == 24 and synergy[0].memory_gib == 500


def test_bad_cluster_file_names_the_field(tmp_path) -> None:
    spec = tmp_path / "c.json"
    spec.write_text(json.dumps({"nodes": [{"name": "a", "gpus": 4, "cpus": 16}]}))
    with pytest.raises(ClusterSpecError, match=r"nodes\[0\]: missing field 'memory'"):
        parse_cluster_spec(str(spec))


def test_peer_traces(peers) -> None:
    synergy_book = load_profile_book(peers / "synergy" / "model_profiles.json")
    synergy = read_workload(peers / "synergy" / "static_100job_6_3_1100.0.csv", synergy_book)
    assert len(synergy) == 100 and synergy[0].model == "alexnet"
    assert synergy[0].samples_per_epoch == 3349 * 512
    book = load_profile_book(peers / "shockwave")
    traces = peers / "shockwave" / "traces"
    stem = "120_0.2_5_100_40_25_0,0.5,0.5_0.6,0.3,0.09,0.01_multigpu_dynamic"
    derived = read_workload(traces / f"{stem}.jobs.jsonl", book)
    assert len(derived) == 120
    assert derived[0].adaptation.schedule == ((0, 10), (11, 20), (21, 40), (22, 10))
    raw = read_workload(traces / f"{stem}.trace", book)
    assert len(raw) == 120
    assert [j.epochs for j in raw[:5]] == [j.epochs for j in derived[:5]]
    assert [j.max_gpus for j in raw] == [j.max_gpus for j in derived]


def test_bad_peer_trace_line(tmp_path) -> None:
    path = tmp_path / "x.trace"
    path.write_text("ResNet-18 (batch size 32)\tcmd\n")
    with pytest.raises(WorkloadError, match=r"x.trace:1: expected 12 tab-separated fields, got 2"):
        read_workload(path, BOOK)


def test_generated_schedules() -> None:
    assert gns_schedule(epochs=100, initial=32, largest=256) == ((0, 32), (20, 64), (35, 128), (55, 256))
    assert gns_schedule(epochs=100, initial=128, largest=256) == ((0, 128), (20, 256))
    assert accordion_schedule(epochs=100, small=32, large=256) == (
        (0, 32),
        (10, 256),
        (50, 32),
        (55, 256),
        (75, 32),
        (80, 256),
    )
