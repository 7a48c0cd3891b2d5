"""Goodput by hand: statistical efficiency from (grad_sqr, grad_var), the batch chosen for a GPU count, seconds."""

from __future__ import annotations

import pytest

from stretto.core.goodput import GoodputModel

# B0 = 100. Epoch 0: grad_sqr 1, grad_var 4 (noise scale 400); epoch 1: grad_var 40 (noise scale 4,000).
STATS = ((1.0, 4.0), (1.0, 40.0))
RATES = {(100, 1): 100.0, (200, 1): 150.0, (400, 1): 180.0, (200, 2): 300.0, (400, 2): 360.0}


def toy() -> GoodputModel:
    return GoodputModel(init_batch_size=100, batch_sizes=(100, 200, 400), rates=RATES,
                        grad_stats={100: STATS, 400: STATS}, epoch_ends=(1000.0, 3000.0))


def test_efficiency_by_hand() -> None:
    m = toy()
    # scale 2: gain = (4 + 1) / (4/2 + 1) = 5/3, efficiency = gain / scale = 5/6
    assert m.efficiency(200, 0.0) == pytest.approx(5 / 6)
    # scale 4: gain = 5 / 2, efficiency 0.625; later the noise is 10x: gain = 41 / 11, efficiency 41/44
    assert m.efficiency(400, 0.0) == pytest.approx(0.625)
    assert m.efficiency(400, 0.5) == pytest.approx(41 / 44)
    assert m.efficiency(100, 0.9) == pytest.approx(1.0)
    assert m.epoch_at(1000 / 3000 - 1e-6) == 0 and m.epoch_at(1000 / 3000) == 1


def test_statistics_between_validated_batches_are_linear() -> None:
    m = GoodputModel(init_batch_size=100, batch_sizes=(100, 250, 400), rates=RATES,
                     grad_stats={100: ((1.0, 4.0),), 400: ((2.0, 8.0),)}, epoch_ends=(10.0,))
    assert m.stats(250, 0) == pytest.approx((1.5, 6.0))
    sqr, var = 1.5, 6.0
    assert m.efficiency(250, 0.0) == pytest.approx((var + sqr) / (var / 2.5 + sqr) / 2.5)


def test_the_batch_chosen_for_a_gpu_count_by_hand() -> None:
    m = toy()
    # epoch 0, 1 GPU: goodput 100 × 1, 150 × 5/6 = 125, 180 × 0.625 = 112.5 -> 200
    assert m.best_batch(1, 0.0) == 200
    assert m.goodput(200, 1, 0.0) == pytest.approx(125.0)
    # 2 GPUs: batch 100 cannot run; 300 × 5/6 = 250 beats 360 × 0.625 = 225 -> 200
    assert m.best_batch(2, 0.0) == 200
    # epoch 1, 1 GPU: 100, 150 × 41/42 = 146.4, 180 × 41/44 = 167.7 -> 400; capped at 200 by the job's range
    assert m.best_batch(1, 0.5) == 400
    assert m.best_batch(1, 0.5, (100, 200)) == 200
    assert m.best_batch(3, 0.5) == 400  # more GPUs than tabulated read the largest count below


def test_seconds_with_and_without_the_noise_ahead() -> None:
    m = toy()
    ahead = 1000 / 125 + 2000 / (180 * 41 / 44)  # each epoch at its best batch
    assert m.seconds(1, 0.0, 1.0, foresight=True) == pytest.approx(ahead)
    assert m.seconds(1, 0.0, 1.0, foresight=False) == pytest.approx(3000 / 125)  # epoch 0's goodput all the way
    half = 0.5  # 1500 of 3000: inside epoch 1
    assert m.seconds(1, half, 1.0, foresight=True) == pytest.approx(1500 / (180 * 41 / 44))
    assert m.seconds(2, 0.0, 1.0, foresight=True) == pytest.approx(1000 / 250 + 2000 / (360 * 41 / 44))


def test_malformed_models_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing"):
        GoodputModel(init_batch_size=100, batch_sizes=(200, 100), rates=RATES, grad_stats={100: STATS},
                     epoch_ends=(1.0, 2.0))
    with pytest.raises(ValueError, match="every epoch"):
        GoodputModel(init_batch_size=100, batch_sizes=(100,), rates=RATES, grad_stats={100: STATS[:1]},
                     epoch_ends=(1.0, 2.0))


def test_a_spread_placement_reads_its_measured_placement_else_its_shape() -> None:
    rates = {(200, 4): 400.0}
    m = GoodputModel(init_batch_size=100, batch_sizes=(200,), rates=rates, grad_stats={100: STATS},
                     epoch_ends=(1000.0, 3000.0), placement_rates={(200, (1, 3)): 300.0},
                     shape_rates={(200, 1, 4): 400.0, (200, 2, 4): 250.0, (200, 4, 4): 100.0})
    assert m.throughput_on(200, (4,)) == 400.0  # consolidated
    assert m.throughput_on(200, (3, 1)) == 300.0  # measured, in its smallest rotation
    assert m.throughput_on(200, (2, 2)) == 250.0  # unmeasured: its shape (2 nodes, 4 GPUs)
    assert m.throughput_on(200, (1, 1, 2)) == 100.0  # no 3-node shape: the nearest, more nodes on a tie
    assert m.throughput_on(100, (2, 2)) == 0.0  # batch 100 cannot run on 4 GPUs
