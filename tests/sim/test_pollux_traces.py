"""Pollux's workloads and traces: efficiency by hand, a toy traces folder by hand, the reader's errors, fidelity."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from stretto.core.builders import make_job, make_nodes, make_snapshot
from stretto.core.decisions import ShareRequest, Shares
from stretto.core.packers.most_free import most_free_plan
from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.profile_loading import load_profile_book
from stretto.core.profiles import ModelProfile, canonical_placement
from stretto.core.registries import PluginSpec, builtin_packers, builtin_policies, builtin_predictors
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.core.snapshots import JobAllocation, WorkerPlacement
from stretto.core.statistical_efficiency import gradient_noise_scale, progress_gain, statistical_efficiency
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.command import _conventions, _default_profiles
from stretto.sim.simulator import SimulationConfig, Simulator, _gpus_by_node, _moved
from stretto.sim.workloads import WorkloadError, read_workload

HEADER = "name,time,application,num_replicas,batch_size\n"


# -- statistical efficiency ------------------------------------------------------------------------
def test_efficiency_by_hand_from_cifar10_validation_row(peers) -> None:
    # cifar10/validation-1024.csv, epoch 0: grad_sqr 8.97853, grad_var 6.74028; B0 = 128 (smallest validated).
    path = peers / "pollux" / "traces" / "cifar10" / "validation-1024.csv"
    row = next(csv.DictReader(path.open()))
    sqr, var = float(row["grad_sqr"]), float(row["grad_var"])
    assert (sqr, var) == (8.978532644212862, 6.740279795719679)
    # scale 1024/128 = 8: gain = (6.74028 + 8.97853) / (6.74028/8 + 8.97853) = 15.71881 / 9.82107 = 1.60052
    assert progress_gain(1024, 128, sqr, var) == pytest.approx(1.60052, abs=1e-5)
    # efficiency = gain / 8 = 0.200065; B_noise = 128 · 6.74028 / 8.97853 = 96.091
    assert statistical_efficiency(1024, 128, sqr, var) == pytest.approx(0.200065, abs=1e-6)
    assert gradient_noise_scale(128, sqr, var) == pytest.approx(96.091, abs=1e-3)
    # the same through B_noise: (96.091 + 128) / (96.091 + 1024) = 0.200065
    via_noise_scale = (96.091 + 128) / (96.091 + 1024)
    assert statistical_efficiency(1024, 128, sqr, var) == pytest.approx(via_noise_scale, abs=1e-5)
    assert statistical_efficiency(128, 128, sqr, var) == 1.0
    assert progress_gain(1024, 128, 0.0, 0.0) == 1.0  # no signal: a step is a step


# -- a toy traces folder, by hand ----------------------------------------------------------------
def write_toy(root: Path) -> Path:
    """One application 'toy': placements 1 and 2, one scalability row, validations at batch 8 and 16."""
    app = root / "traces" / "toy"
    app.mkdir(parents=True)
    (app / "placements.csv").write_text(
        "placement,local_bsz,step_time,sync_time\n1,8,1.0,0.1\n1,16,2.0,0.2\n2,8,1.2,0.3\n2,16,2.2,0.3\n"
    )
    (app / "scalability.csv").write_text("num_nodes,num_replicas,local_bsz,step_time,sync_time\n6,6,8,3.0,1.0\n")
    # two epochs of 10 progress units each; at batch 8 no noise (gain 1), at 16 grad_var = grad_sqr (gain 4/3)
    (app / "validation-8.csv").write_text("progress,iteration,metric,grad_sqr,grad_var\n10,10,0.5,1,0\n20,20,0.6,1,0\n")
    (app / "validation-16.csv").write_text("progress,iteration,metric,grad_sqr,grad_var\n10,5,0.5,1,1\n20,10,0.6,1,1\n")
    return root / "traces"


def test_toy_work_and_rates_by_hand(tmp_path) -> None:
    traces = write_toy(tmp_path)
    (tmp_path / "workloads").mkdir()
    wl = tmp_path / "workloads" / "w.csv"
    wl.write_text(HEADER + "a,0,toy,2,16\nb,5,toy,1,16\nc,7,toy,1,8\n")
    assert _default_profiles(str(wl)) == traces
    book = load_profile_book(traces)
    jobs = {j.id: j for j in read_workload(wl, book)}
    profile = book.get("toy")
    # a: 16 on 2 GPUs: local 8, no accumulation, step 1.2 s on placement "2"; gain 4/3 → 7.5 steps an epoch
    #    = 9 s; 2 epochs = 18 s at 16 / 1.2 = 13.33 samples/s → 240 samples.
    assert profile.samples_per_second[(16, 2)] == pytest.approx(16 / 1.2)
    assert jobs["a"].epochs * jobs["a"].samples_per_epoch == pytest.approx(240)
    assert (jobs["a"].workers.min, jobs["a"].workers.max, jobs["a"].batch_size) == (2, 2, 16)
    # b: 16 on one GPU above B0 = 8: Pollux accumulates once, atomic 8: 1.0 + (1.0 - 0.1) = 1.9 s a step;
    #    7.5 steps = 14.25 s, rounded to 14 per epoch: 28 s at 16 / 1.9 samples/s.
    assert profile.samples_per_second[(16, 1)] == pytest.approx(16 / 1.9)
    assert jobs["b"].epochs * jobs["b"].samples_per_epoch == pytest.approx(28 * 16 / 1.9)
    # c: 8 on one GPU: 10 steps of 1.0 s an epoch: 20 s at 8 samples/s.
    assert jobs["c"].epochs * jobs["c"].samples_per_epoch == pytest.approx(160)
    # a spread placement reads its own row: 2 GPUs as (1, 1) is not measured → falls back to "2"
    assert profile.throughput_on(16, (1, 1)) == pytest.approx(16 / 1.2)
    assert profile.throughput_on(8, (1,)) == pytest.approx(8.0)


def test_toy_job_finishes_when_pollux_says(tmp_path) -> None:
    traces = write_toy(tmp_path)
    wl = tmp_path / "w.csv"
    wl.write_text(HEADER + "a,10,toy,2,16\n")
    book = load_profile_book(traces)
    args = argparse.Namespace(round_seconds=None, restore_overhead=None, resize_overhead=None,
                              finish_at_round_end=None, workers_can_move=False, batch_switch=None)
    config = _conventions(str(wl), args)
    assert (config.round_seconds, config.restore_overhead_s, config.resize_overhead_s) == (60.0, 30.0, 30.0)
    assert config.move_costs_restore and not config.finish_at_round_end
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name="las", args={"queue_thresholds_gpu_s": [57600]}),
                                        packer=PluginSpec(name="most-free")))
    result = Simulator(workload=read_workload(wl, book), nodes=parse_cluster_spec("2x4"), profiles=book,
                       plugins=plugins, config=config).run()
    # arrives at 10, first round at 60, 30 s restart, 18 s of training: done at 108, JCT 98 s (as in Pollux)
    assert result.outcomes[0].finish_s == pytest.approx(108.0)
    assert result.outcomes[0].jct_s == pytest.approx(98.0)


# -- the reader's errors -----------------------------------------------------------------------------
def test_a_misspelt_header_is_refused_naming_both_csv_headers(tmp_path) -> None:
    book = load_profile_book(write_toy(tmp_path))
    wl = tmp_path / "w.csv"
    wl.write_text("name,tiem,application,num_replicas,batch_size\na,0,toy,1,8\n")
    with pytest.raises(WorkloadError) as error:
        read_workload(wl, book)
    assert str(error.value) == (f"{wl}:1: a header that is neither Synergy's (job_id,model,arrival_s,iterations,gpus) "
                                "nor Pollux's (name,time,application,num_replicas,batch_size): "
                                "'name,tiem,application,num_replicas,batch_size'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name,time,application,num_replicas,batch_size,extra\na,0,toy,1,8,1\n", "w.csv:1: header"),
        (HEADER + "a,0,toy,1\n", "w.csv:2: expected 5 fields, got 4"),
        (HEADER + "a,soon,toy,1,8\n", "w.csv:2: field 'time': 'soon' is not a number"),
        (HEADER + "a,0,toy,two,8\n", "w.csv:2: field 'num_replicas': 'two' is not a number"),
        (HEADER + "a,0,resnet,1,8\n", "w.csv:2: field 'application': no traces folder for 'resnet'"),
        (HEADER + "a,0,toy,1,12\n", "w.csv:2: field 'batch_size': 12 is not one of toy's validated batch sizes"),
        (HEADER + "a,0,toy,0,8\n", "w.csv:2: field 'num_replicas': must be ≥ 1"),
        (HEADER + "a,0,toy,1,8\nb,3,toy,3,16\n", "w.csv:3: field 'num_replicas': the traces measure no placement"),
    ],
)
def test_workload_errors_name_file_line_and_field(tmp_path, text, message) -> None:
    book = load_profile_book(write_toy(tmp_path))
    wl = tmp_path / "w.csv"
    wl.write_text(text)
    if not text.startswith(HEADER):
        # not Pollux's header: read as Synergy's CSV, whose error names the line too
        with pytest.raises(WorkloadError, match=r"w\.csv:1"):
            read_workload(wl, book)
        from stretto.sim.pollux_traces import read_pollux_csv

        with pytest.raises(WorkloadError, match=message):
            read_pollux_csv(wl, book)
        return
    with pytest.raises(WorkloadError, match=message):
        read_workload(wl, book)


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("placements.csv", None, r"toy/placements.csv: missing"),
        ("placements.csv", "placement,local_bsz,step\n1,8,1.0\n", r"placements.csv:1: header"),
        ("placements.csv", "placement,local_bsz,step_time,sync_time\n1,8,fast,0.1\n",
         r"placements.csv:2: field 'step_time': 'fast' is not a number"),
        ("placements.csv", "placement,local_bsz,step_time,sync_time\n1,8,1.0\n",
         r"placements.csv:2: expected 4 fields"),
        ("placements.csv", "placement,local_bsz,step_time,sync_time\n1x,8,1.0,0.1\n",
         r"placements.csv:2: field 'placement'"),
        ("scalability.csv", None, r"toy/scalability.csv: missing"),
        ("scalability.csv", "num_nodes,num_replicas,local_bsz,step_time,sync_time\n6,-6,8,3.0,1.0\n",
         r"scalability.csv:2: field 'num_replicas'"),
        ("validation-8.csv", "progress,iteration,metric,grad_sqr\n10,10,0.5,1\n", r"validation-8.csv:1: header"),
        ("validation-8.csv", "progress,iteration,metric,grad_sqr,grad_var\n10,10,0.5,1,nan?\n",
         r"validation-8.csv:2: field 'grad_var'"),
        ("validation-big.csv", "progress,iteration,metric,grad_sqr,grad_var\n", r"validation-big.csv: name must be"),
    ],
)
def test_trace_errors_name_file_line_and_field(tmp_path, file, content, message) -> None:
    traces = write_toy(tmp_path)
    path = traces / "toy" / file
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    wl = tmp_path / "w.csv"
    wl.write_text(HEADER + "a,0,toy,1,8\n")
    with pytest.raises(ValueError, match=message):
        read_workload(wl, load_profile_book(traces))


def test_pollux_workload_needs_the_traces_folder(tmp_path, peers) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text(HEADER + "a,0,cifar10,1,128\n")
    with pytest.raises(WorkloadError, match="needs --profiles <Pollux traces folder>"):
        read_workload(wl, load_profile_book(peers / "shockwave"))


# -- mechanics -------------------------------------------------------------------------------------
def _allocation(*workers: tuple[str, tuple[int, ...]]) -> JobAllocation:
    return JobAllocation("j", tuple(WorkerPlacement(n, g, 3.0, 10.0) for n, g in workers))


def test_a_move_is_a_change_of_nodes_or_gpus_and_placements_are_rings() -> None:
    before = _allocation(("n0", (0,)), ("n0", (1,)), ("n1", (0,)))
    assert _gpus_by_node(before) == (2, 1) and canonical_placement((2, 1)) == (1, 2)
    assert not _moved(before, _allocation(("n1", (0,)), ("n0", (1,)), ("n0", (0,))))  # same GPUs, other order
    assert _moved(before, _allocation(("n0", (0,)), ("n0", (2,)), ("n1", (0,))))  # another GPU on n0
    assert canonical_placement((4, 2, 0)) == (2, 4) and canonical_placement((1, 3, 1, 2)) == (1, 2, 1, 3)


def test_most_free_fills_the_emptiest_node_first() -> None:
    ledger = NodeLedger(make_nodes(3, gpus=4))
    ledger.free_gpus[:] = [2, 3, 1]
    cpus, memory = np.full(3, 3.0), np.full(3, 10.0)
    # 4 workers: node 1 (3 free) takes 3, then node 0 (2 free) the last one
    assert most_free_plan(ledger, 4, 1, cpus, memory) == [(1, 3), (0, 1)]
    assert most_free_plan(ledger, 7, 1, cpus, memory) is None


def test_las_admits_by_gpu_count_in_queue_order() -> None:
    # 8 GPUs; a (5 GPUs, queue 0) fits, b (4) does not after it, c (3) does: Tiresias skips b, runs c
    jobs = [make_job("a", gpus=5, arrival_s=0), make_job("b", gpus=4, arrival_s=1), make_job("c", gpus=3, arrival_s=2)]
    snapshot = make_snapshot(jobs, nodes=make_nodes(2, gpus=4))
    predictions = builtin_predictors().build("planned-schedule").predict(snapshot)
    policy = builtin_policies().build("las", {"queue_thresholds_gpu_s": [57600], "admit_by_gpu_count": True})
    shares = policy.share(snapshot, predictions)
    assert [r.job_id for r in shares.requests] == ["a", "c"]
    assert "needs 4 GPUs; 3 left" in shares.waiting["b"]


# -- on Pollux's own data ----------------------------------------------------------------------------
def test_workload_2_reproduces_pollux_tiresias(peers) -> None:
    pollux = peers / "pollux"
    book = load_profile_book(pollux / "traces")
    workload = read_workload(pollux / "workloads" / "workload-2.csv", book)
    assert len(workload) == 160
    # bert on 6 GPUs at 384: 10 atomic × 6 accumulation steps, 3,093 s alone (Pollux's fastest such job: 3,092 s)
    bert = next(j for j in workload if j.model == "bert" and j.workers.max == 6)
    assert bert.epochs * bert.samples_per_epoch / book.get("bert").samples_per_second[(384, 6)] == pytest.approx(
        3093, abs=1)
    plugins = build_plugins(RoundConfig(
        policy=PluginSpec(name="las", args={"queue_thresholds_gpu_s": [57600], "admit_by_gpu_count": True}),
        packer=PluginSpec(name="most-free")))
    config = SimulationConfig(round_seconds=60, restore_overhead_s=30, resize_overhead_s=30, move_costs_restore=True,
                              workers_can_move=False)
    result = Simulator(workload=workload, nodes=parse_cluster_spec("16x4"), profiles=book, plugins=plugins,
                       config=config).run()
    published = json.loads((pollux / "published_jcts.json").read_text())["jcts"]["tiresias"]["workload-2"]
    ours = {o.job_id: o.jct_s for o in result.outcomes}
    assert np.mean(list(ours.values())) == pytest.approx(np.mean(list(published.values())), rel=0.02)
    assert np.percentile(list(ours.values()), 99) == pytest.approx(np.percentile(list(published.values()), 99),
                                                                   rel=0.02)


def test_most_free_places_a_resized_job_anew() -> None:
    # n0 holds a (1 GPU) and b (2 GPUs); a grows to 3: Pollux re-places it whole on the emptiest node, n1
    nodes = make_nodes(2, gpus=4)
    on_n0 = [WorkerPlacement("n0", (g,), 3.0, 50.0) for g in range(3)]
    previous = {"a": JobAllocation("a", (on_n0[0],)), "b": JobAllocation("b", tuple(on_n0[1:]))}
    snapshot = make_snapshot([make_job("a", gpus=4, min_workers=1), make_job("b", gpus=2)], nodes=nodes,
                             previous=previous, workers_can_move=False)
    shares = Shares((ShareRequest("b", 2), ShareRequest("a", 3)))
    packer = builtin_packers().build(PluginSpec(name="most-free", args={"resized_anew": True}))
    placed = {a.job_id: a for a in packer.pack(snapshot, shares).allocations}
    assert placed["a"].nodes == ("n1",) and placed["a"].gpus == 3
    # by default (a live cluster) a grows where it runs: its worker on n0 stays, 2 new ones beside it
    kept = {a.job_id: a for a in builtin_packers().build("most-free").pack(snapshot, shares).allocations}
    assert kept["a"].workers[0] == on_n0[0] and kept["a"].gpus == 3
    assert not _moved(previous["b"], placed["b"])  # b kept its GPUs


def test_optimus_greedy_marginal_gain_by_hand() -> None:
    # step time at batch 10: 1 GPU 1.0 s, 2: 10/16 = 0.625 s, 3: 10/18 = 0.556 s, 4: 10/19 = 0.526 s
    profile = ModelProfile("toy", {(10, 1): 10.0, (10, 2): 16.0, (10, 3): 18.0, (10, 4): 19.0}, default_batch_size=10)
    jobs = [
        # after the current epoch: a 900 samples = 90 steps, b 40 steps, c in its last epoch 1 step
        make_job("a", gpus=4, min_workers=1, samples=1000, samples_per_epoch=100, profile=profile),
        make_job("b", gpus=4, min_workers=1, samples=500, samples_per_epoch=100, profile=profile, arrival_s=1),
        make_job("c", gpus=4, min_workers=1, samples=500, done=450, samples_per_epoch=100, profile=profile,
                 arrival_s=2),
    ]
    snapshot = make_snapshot(jobs, nodes=make_nodes(1, gpus=5))
    predictions = builtin_predictors().build("planned-schedule").predict(snapshot)
    shares = builtin_policies().build("optimus").share(snapshot, predictions)
    # one each (2 left); gains a 0.375·90 = 33.75, b 0.375·40 = 15, c 0.375 → a; then a 0.069·90 = 6.25 < b 15 → b
    assert [(r.job_id, r.gpus) for r in shares.requests] == [("c", 1), ("a", 2), ("b", 2)]


def test_elastic_pollux_jobs_range_from_one_gpu(tmp_path) -> None:
    book = load_profile_book(write_toy(tmp_path))
    wl = tmp_path / "w.csv"
    wl.write_text(HEADER + "a,0,toy,2,16\n")
    from stretto.sim.pollux_traces import read_pollux_csv

    job = read_pollux_csv(wl, book, jobs="elastic")[0]
    # 16 / smallest local batch 8 = 2 workers at most; the work is the rigid job's (240 samples)
    assert (job.workers.min, job.workers.max) == (1, 2)
    assert job.epochs * job.samples_per_epoch == pytest.approx(240)
