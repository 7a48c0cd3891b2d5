"""The simulator's learned job models (`SimulationConfig.job_model`): the core sees a posterior, not the truth."""

from __future__ import annotations

import argparse
import math
import random
import statistics

import pytest

import stretto.sim.simulator as simulator_module
from stretto.core.job_model import GENERIC_SAMPLES_PER_SECOND, JobThroughputModel, job_prior, job_profile
from stretto.core.registries import PluginSpec
from stretto.core.report_noise import ReportNoiseModel
from stretto.core.rounds import RoundConfig, build_plugins
from stretto.sim import command
from stretto.sim.clusters import parse_cluster_spec
from stretto.sim.combined_workload import load_combined_book
from stretto.sim.elastic_workload import ElasticWorkloadArgs, generate_elastic
from stretto.sim.learned_profiles import LearnedProfiles
from stretto.sim.metrics import summarise
from stretto.sim.simulator import SimulationConfig, SimulationResult, Simulator, batch_size_options

BASE = SimulationConfig(round_seconds=120, restore_overhead_s=20, resize_overhead_s=20, workers_can_move=False)
QUIET = {"report_noise": 0.0, "report_outlier_fraction": 0.0}


@pytest.fixture
def book(peers):
    return load_combined_book(peers)


@pytest.fixture
def workload(book):
    return generate_elastic(ElasticWorkloadArgs(jobs=10, mean_interarrival_s=60, max_hours=0.6), profiles=book, seed=4)


def _simulator(workload, book, **config) -> Simulator:
    plugins = build_plugins(RoundConfig(predictor=PluginSpec(name="bayesian-regime"), policy=PluginSpec(name="stretto"),
                                        packer=PluginSpec(name="synergy-tune")))
    return Simulator(workload=workload, nodes=parse_cluster_spec("2x8,cpus=24,memory=500Gi"), profiles=book,
                     plugins=plugins, config=BASE.model_copy(update=config))


def _figures(result: SimulationResult) -> tuple[float, float, float]:
    s = summarise(result)
    return s.makespan_s, s.avg_jct_s, s.unfair_fraction


def _recording(monkeypatch) -> list:
    """Every (snapshot, decision) the simulated rounds make."""
    seen: list = []
    real = simulator_module.run_round

    def recorded(snapshot, plugins):
        decision = real(snapshot, plugins)
        seen.append((snapshot, decision))
        return decision

    monkeypatch.setattr(simulator_module, "run_round", recorded)
    return seen


def test_the_oracle_is_the_default_and_hands_the_core_each_jobs_true_profile(workload, book, monkeypatch) -> None:
    assert SimulationConfig().job_model == "oracle"
    seen = _recording(monkeypatch)
    default = _simulator(workload, book).run()
    assert seen and all(job.profile is book.get(job.model) for snapshot, _ in seen for job in snapshot.jobs)
    assert _figures(_simulator(workload, book, job_model="oracle").run()) == _figures(default)


def test_learned_from_the_true_family_with_clean_reports_is_the_oracle_run(workload, book) -> None:
    # The family's prior reproduces its table and grid; clean reports agree with it, so the posterior stays put.
    oracle = _simulator(workload, book).run()
    learned = _simulator(workload, book, job_model="learned", **QUIET).run()
    assert _figures(learned) == pytest.approx(_figures(oracle), rel=1e-9)


def test_the_core_sees_the_posterior_which_moves_with_reports(workload, book, monkeypatch) -> None:
    seen = _recording(monkeypatch)
    sim = _simulator(workload, book, job_model="learned-unknown")
    sim.run()
    first = {job.job_id: job.profile for job in seen[0][0].jobs}
    for job_id, profile in first.items():  # before any report: the generic prior, the model name kept
        assert profile.source.startswith("learned online from 0 reports; prior: generic")
        assert profile.model == next(j.model for j in workload if j.id == job_id)
    last = {job.job_id: job.profile for snapshot, _ in seen for job in snapshot.jobs}
    moved = [job_id for job_id, profile in last.items() if sim.learned.model(job_id).observed > 0]
    assert moved and all(last[job_id] is not first.get(job_id) for job_id in moved)
    assert all(not p.model or p is not book.get(p.model) for p in last.values())


def test_reports_are_taken_at_the_allocation_really_held(workload, book, monkeypatch) -> None:
    seen = _recording(monkeypatch)
    sim = _simulator(workload, book, job_model="learned", **QUIET)
    sim.run()
    held: dict[str, list] = {}
    previous: dict = {}
    for _, decision in seen:
        for job_id, a in decision.allocations.items():
            lost = BASE.restore_overhead_s if job_id not in previous else (
                BASE.resize_overhead_s if previous[job_id].gpus != a.gpus else 0.0)
            if lost < BASE.round_seconds and not a.shared:
                held.setdefault(job_id, []).append((a.gpus, a.cpu_per_gpu, a.memory_gib_per_gpu))
        previous = dict(decision.allocations)
    assert held
    for job in workload:
        reports = sim.learned.reports(job.id)
        assert [(g, c, m) for g, _, c, m, _ in reports] == held[job.id]
        truth = book.get(job.model)
        for gpus, batch, cpu, memory, rate in reports:  # clean: exactly the true rate there
            assert rate == pytest.approx(truth.throughput(batch, gpus, cpu, memory), rel=1e-12)
        progress = next(p for p in sim.jobs if p.spec.id == job.id)
        assert [b for _, b, _, _, _ in reports][-1] == progress.history[-1][1]
        assert {b for _, b, _, _, _ in reports} <= set(batch_size_options(progress))
    assert len({(g, c) for r in held.values() for g, c, _ in r}) > 2  # the allocations really varied


def test_the_same_seed_gives_the_same_run_and_another_seed_other_reports(workload, book) -> None:
    first = _simulator(workload, book, job_model="learned", report_seed=3)
    again = _simulator(workload, book, job_model="learned", report_seed=3)
    other = _simulator(workload, book, job_model="learned", report_seed=4)
    a, b = first.run(), again.run()
    other.run()
    assert _figures(a) == _figures(b) and a.outcomes == b.outcomes
    job = workload[0].id
    assert first.learned.reports(job) == again.learned.reports(job)
    assert first.learned.reports(job) != other.learned.reports(job)


def test_an_unknown_job_converges_to_its_truth_from_clean_reports(book) -> None:
    # Generic prior (500 samples/s on one GPU), truth Recommendation at 4 GPUs: after 5 clean reports there,
    # the posterior at that allocation is within 1 %; before them it was off by more than a factor 10.
    truth = book.get("Recommendation")
    batch = truth.batch_sizes[0]
    learned = LearnedProfiles(book, hide_family=True, noise=ReportNoiseModel(noise=0.0, outlier_fraction=0.0))
    learned.add("j", model="Recommendation", batch_size=batch, samples_per_epoch=50_000, batch_sizes=(batch,),
                gpus_per_worker=1, min_workers=1, max_workers=4)
    true_rate = truth.throughput(batch, 4, 3.0, 62.5)
    before = learned.profile("j").throughput(batch, 4)
    assert before == pytest.approx(GENERIC_SAMPLES_PER_SECOND * 4**0.9, rel=1e-9)
    assert abs(math.log(before / true_rate)) > math.log(10)
    for _ in range(5):
        learned.observe("j", gpus=4, batch_size=batch, cpu_per_gpu=3.0, memory_gib_per_gpu=62.5,
                        true_samples_per_second=true_rate)
    assert learned.profile("j").throughput(batch, 4) == pytest.approx(true_rate, rel=0.01)


def test_the_profile_is_cached_until_the_next_report_and_is_the_operators_table(book) -> None:
    learned = LearnedProfiles(book, hide_family=False, noise=ReportNoiseModel(seed=1))
    learned.add("j", model="LM", batch_size=5, samples_per_epoch=1000, batch_sizes=(5, 80), gpus_per_worker=2,
                min_workers=1, max_workers=3)
    first = learned.profile("j")
    assert learned.profile("j") is first
    learned.observe("j", gpus=2, batch_size=5, cpu_per_gpu=3.0, memory_gib_per_gpu=62.5, true_samples_per_second=100.0)
    after = learned.profile("j")
    assert after is not first and learned.profile("j") is after
    expected = job_profile(JobThroughputModel(job_prior(book=book, model="LM", batch_size=5, samples_per_epoch=1000))
                           .observe(gpus=2, batch_size=5, cpu_per_gpu=3.0, memory_gib_per_gpu=62.5,
                                    samples_per_second=learned.reports("j")[0][4]),
                           batch_sizes=(5, 80), gpus_per_worker=2, min_workers=1, max_workers=3)
    assert after.samples_per_second == expected.samples_per_second
    assert {(5, 6), (80, 6), (5, 2), (80, 4)} <= set(after.samples_per_second)  # max workers x GPUs, 1, 2 workers


def test_report_noise_is_the_emulators_kind() -> None:
    rng = random.Random(7)
    clean = ReportNoiseModel(noise=0.0, outlier_fraction=0.0)
    assert {clean.factor(rng) for _ in range(50)} == {1.0}
    outliers = ReportNoiseModel(noise=0.1, outlier_fraction=1.0, outlier_factor=(0.3, 3.0))
    assert all(0.3 <= outliers.factor(rng) <= 3.0 for _ in range(500))
    noisy = [ReportNoiseModel(noise=0.2, outlier_fraction=0.0).factor(rng) for _ in range(20_000)]
    assert statistics.fmean(noisy) == pytest.approx(1.0, abs=0.01)  # reports average to the true rate
    assert statistics.stdev(noisy) == pytest.approx(0.2, abs=0.01)
    with pytest.raises(ValueError):
        ReportNoiseModel(outlier_factor=(3.0, 0.3))


def test_the_command_line_chooses_the_job_model() -> None:
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(["simulate", "--workload", "elastic:jobs=4", "--cluster", "1x8", "--job-model",
                              "learned-unknown", "--report-noise", "0.2", "--report-outliers", "0.1", "--seed", "5"])
    config = command._conventions(args.workload, args)
    assert (config.job_model, config.report_noise, config.report_outlier_fraction, config.report_seed) == (
        "learned-unknown", 0.2, 0.1, 5)
    default = command._conventions("elastic:jobs=4", parser.parse_args(["simulate", "--workload", "x", "--cluster",
                                                                        "1x8"]))
    assert (default.job_model, default.report_noise, default.report_outlier_fraction) == ("oracle", 0.1, 0.05)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--workload", "x", "--cluster", "1x8", "--job-model", "psychic"])
