"""Goodput jobs in the simulator: progress follows statistical efficiency; the batch is chosen per round;
Pollux's workloads read as goodput jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from stretto.core.goodput import GoodputModel
from stretto.core.profile_loading import load_profile_book
from stretto.core.profiles import ModelProfile, ProfileBook
from stretto.core.registries import PluginSpec
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.core.snapshots import NodeState
from stretto.sim.pollux_traces import read_pollux_csv
from stretto.sim.simulator import SimulationConfig, Simulator
from stretto.sim.workloads import WorkloadError, WorkloadJob, read_workload

POLLUX = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "peers" / "pollux"
STATS = ((1.0, 4.0), (1.0, 40.0))  # B0 = 100: noise scale 400 in epoch 0, 4,000 in epoch 1
RATES = {(100, 1): 100.0, (200, 1): 150.0, (400, 1): 180.0}
NODE = (NodeState("n0", gpus=1, cpus=8, memory_gib=64),)


def toy_book() -> ProfileBook:
    model = GoodputModel(init_batch_size=100, batch_sizes=(100, 200, 400), rates=RATES,
                         grad_stats={100: STATS, 400: STATS}, epoch_ends=(1000.0, 3000.0))
    profile = ModelProfile(model="toy", samples_per_second=RATES, default_batch_size=100, goodput=model)
    return ProfileBook({"toy": profile}, source="toy")


def job(batch_range: tuple[int, int]) -> WorkloadJob:
    return WorkloadJob.model_validate({
        "id": "j", "arrival_s": 0, "model": "toy", "batch_size": batch_range[0], "epochs": 3,
        "samples_per_epoch": 1000, "adaptation": {"mode": "goodput", "batch_range": list(batch_range)}})


def run(batch_range: tuple[int, int], round_s: float, policy: str = "fifo"):
    plugins = build_plugins(RoundConfig(policy=PluginSpec(name=policy), packer=PluginSpec(name="proportional")))
    sim = Simulator(workload=[job(batch_range)], nodes=NODE, profiles=toy_book(), plugins=plugins,
                    config=SimulationConfig(round_seconds=round_s))
    return sim, sim.run()


def test_progress_follows_efficiency_at_a_fixed_batch() -> None:
    # batch 200 all the way: epoch 0 (1,000 of progress) at 150 × 5/6, epoch 1 (2,000) at 150 × 41/42
    _, result = run((200, 200), 1000.0)
    assert result.outcomes[0].finish_s == pytest.approx(1000 / 125 + 2000 / (150 * 41 / 42))


def test_the_job_takes_the_goodput_best_batch_each_round() -> None:
    # 5 s rounds, 1 GPU: rounds 1-2 pick 200 (epoch 0), holding it into epoch 1 at t = 8; from t = 10 it is 400
    sim, result = run((100, 400), 5.0)
    done_at_10 = 1000 + 2 * 150 * 41 / 42
    assert result.outcomes[0].finish_s == pytest.approx(10 + (3000 - done_at_10) / (180 * 41 / 44))
    assert [b for _, b in sim.jobs[0].history] == [200, 400]


def test_stretto_names_the_batch_it_chose() -> None:
    sim, result = run((100, 400), 5.0, policy="stretto")
    assert [b for _, b in sim.jobs[0].history] == [200, 400]
    # the metric's T(g): each epoch at its best batch on 1 GPU
    assert result.outcomes[0].scaling == ((1, pytest.approx(1000 / 125 + 2000 / (180 * 41 / 44))),)


def test_goodput_needs_a_range_inside_which_the_batch_starts() -> None:
    with pytest.raises(ValueError, match="batch_range is required"):
        WorkloadJob.model_validate({"id": "j", "arrival_s": 0, "model": "toy", "batch_size": 100, "epochs": 1,
                                    "adaptation": {"mode": "goodput"}})
    with pytest.raises(ValueError, match=r"outside adaptation\.batch_range"):
        WorkloadJob.model_validate({"id": "j", "arrival_s": 0, "model": "toy", "batch_size": 50, "epochs": 1,
                                    "adaptation": {"mode": "goodput", "batch_range": [100, 400]}})
    with pytest.raises(ValueError, match="0 < min <= max"):
        WorkloadJob.model_validate({"id": "j", "arrival_s": 0, "model": "toy", "batch_size": 100, "epochs": 1,
                                    "adaptation": {"mode": "goodput", "batch_range": [400, 100]}})


def test_a_goodput_job_needs_a_goodput_model() -> None:
    book = ProfileBook({"toy": ModelProfile(model="toy", samples_per_second=RATES, default_batch_size=100)})
    plugins = build_plugins(RoundConfig())
    with pytest.raises(WorkloadError, match="goodput model"):
        Simulator(workload=[job((100, 400))], nodes=NODE, profiles=book, plugins=plugins, config=SimulationConfig())


def test_pollux_workload_as_goodput_jobs() -> None:
    book = load_profile_book(POLLUX / "traces")
    path = POLLUX / "workloads" / "workload-1.csv"
    jobs = {j.id: j for j in read_workload(path, book, pollux_jobs="goodput")}
    assert jobs == {j.id: j for j in read_pollux_csv(path, book, jobs="goodput")}
    cifar = jobs["cifar10-0"]
    model = book.get("cifar10").goodput
    assert model is not None
    assert cifar.adaptation.mode == "goodput" and cifar.adaptation.batch_range == (128, 4096)
    assert cifar.batch_size == 128 and (cifar.workers.min, cifar.workers.max) == (1, 64)
    assert cifar.epochs * cifar.samples_per_epoch == pytest.approx(model.total_progress)
    # progress in samples at B0: Pollux's steps at the initial batch × that batch
    app_progress = model.epoch_ends[-1] / 128
    last_rows = [f.read_text().splitlines()[100] for f in (POLLUX / "traces" / "cifar10").glob("validation-*.csv")]
    assert app_progress == pytest.approx(min(float(row.split(",")[0]) for row in last_rows))  # epoch 100's end
    ncf = next(j for j in jobs.values() if j.model == "ncf")
    assert ncf.adaptation.batch_range == (32768, 32768) and ncf.workers.max == 1
