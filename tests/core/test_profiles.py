"""The job model, optimistic profiling and the profile loaders."""

from __future__ import annotations

import pytest

from stretto.core.builders import CPU_HUNGRY, make_profile
from stretto.core.optimistic_profiling import next_cpu_to_measure, optimistic_sensitivity
from stretto.core.profile_loading import load_builtin_profiles, load_profile_book
from stretto.core.profiles import ModelProfile


@pytest.mark.parametrize(
    ("cpu", "mem", "want"),
    [(3, 50, 1.0), (6, 100, 2.0), (5.9, 100, 1.0), (100, 1000, 2.0), (0.5, 10, 0.3), (6, 60, 1.5)],
    ids=["proportional", "ideal", "just-below-grid-point", "beyond-grid", "below-grid", "between-memory-points"],
)
def test_sensitivity_is_a_step_function(cpu: float, mem: float, want: float) -> None:
    assert CPU_HUNGRY.factor(cpu, mem) == want


def test_throughput_scales_with_gpus_and_sensitivity() -> None:
    profile = make_profile(samples_per_second=100.0, sensitivity=CPU_HUNGRY)
    assert profile.throughput(32, 1) == 100.0
    assert profile.throughput(32, 4) == 400.0
    assert profile.throughput(32, 2, cpu_per_gpu=6, memory_gib_per_gpu=100) == 400.0
    assert profile.throughput(64, 1) == 100.0  # nearest measured batch size


def test_unscaled_profile_keeps_rate() -> None:
    profile = ModelProfile("m", {(8, 1): 5.0}, default_batch_size=8, scale_with_gpus=False)
    assert profile.throughput(8, 4) == 5.0


def test_optimistic_profiling_memory_axis() -> None:
    # Compute: 100 samples/s per CPU up to 400; 4000 samples of 40 GiB per epoch. Storage 1 GiB/s,
    # memory 10 GiB/s per CPU. At 2 CPUs and a full cache: compute 20 s, fetch 2 s → 20 s.
    # At 4 CPUs, no cache: compute 10 s, fetch 40 s → memory-bound.
    sens = optimistic_sensitivity(
        cpu_points=[(1, 100), (2, 200), (4, 400), (8, 400)],
        samples_per_epoch=4000,
        dataset_gib=40,
        storage_gib_s=1.0,
        memory_gib_s_per_cpu=10.0,
        proportional_cpu_per_gpu=2,
        proportional_memory_gib_per_gpu=40,
        cpu_axis=(1, 2, 4, 8),
        memory_axis=(0, 20, 40),
    )
    assert sens.factor(2, 40) == 1.0
    assert sens.factor(4, 40) == 2.0  # 20 s → 10 s
    assert sens.factor(4, 0) == 0.5  # 40 s, storage-bound
    # Half cached: 20 GiB from storage at 1 GiB/s (20 s) + 20 GiB from memory at 40 GiB/s (0.5 s).
    assert sens.factor(4, 20) == pytest.approx(20 / 20.5, abs=1e-3)
    assert (sens.ideal_cpu_per_gpu, sens.ideal_memory_gib_per_gpu, sens.ideal_speedup) == (4, 40, 2.0)


@pytest.mark.parametrize(
    ("cpus", "previous", "epoch", "want"), [(24, None, 10.0, 16), (24, 10.0, 10.5, 12.0), (16, 10.0, 20.0, 8)]
)
def test_profiling_walk(cpus: float, previous: float | None, epoch: float, want: float) -> None:
    assert next_cpu_to_measure(cpus, previous_epoch_s=previous, epoch_s=epoch, gpus=8) == want


def test_builtin_profiles_load_and_cite_sources() -> None:
    book = load_builtin_profiles()
    assert {"resnet18", "resnet50", "transformer"} <= set(book.profiles)
    for profile in book.profiles.values():
        assert "Synergy" in profile.source or "Gavel" in profile.source
        assert profile.throughput(profile.default_batch_size, 1) > 0
    resnet18 = book.get("resnet18").sensitivity
    assert resnet18 is not None and resnet18.ideal_speedup > 2.0


def test_peer_profiles_load(peers) -> None:
    synergy = load_profile_book(peers / "synergy" / "model_profiles.json")
    res18 = synergy.get("res18")
    assert res18.sensitivity is not None
    assert res18.sensitivity.ideal_cpu_per_gpu == 9 and res18.sensitivity.ideal_speedup == 2.4
    assert res18.throughput(512, 1) == pytest.approx(512 / 0.64)
    shockwave = load_profile_book(peers / "shockwave")
    lm = shockwave.get("LM")
    assert lm.samples_per_epoch == 59675 and 10 in lm.batch_sizes


def test_unknown_model_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: alexnet, deepspeech"):
        load_builtin_profiles().get("nonexistent")
