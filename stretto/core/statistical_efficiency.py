"""Statistical efficiency of a batch size from the gradient noise scale (McCandlish et al.; Pollux).

A training step at batch size B makes as much progress as `gain` steps at the initial batch size
B0, where, with the gradient's squared norm |G|² (`grad_sqr`) and its variance tr(Σ)
(`grad_var`) measured at B0 and scale = B / B0:

    gain = (grad_var + grad_sqr) / (grad_var / scale + grad_sqr)

Equivalently, with the noise scale B_noise = B0 · grad_var / grad_sqr (Pollux's PGNS),
gain = scale · (B_noise + B0) / (B_noise + B). Efficiency is progress per *sample* relative to B0:
gain / scale, 1 at B0 and falling towards B0 / B once B ≫ B_noise. Pollux's simulator advances
a job by `gain` progress units per step; this module is that one formula, free of any simulator.
"""

from __future__ import annotations


def progress_gain(batch_size: float, init_batch_size: float, grad_sqr: float, grad_var: float) -> float:
    """Steps at `init_batch_size` that one step at `batch_size` is worth (1 when no gradient signal)."""
    if batch_size <= 0 or init_batch_size <= 0:
        raise ValueError("batch sizes must be positive")
    if grad_sqr < 0 or grad_var < 0:
        raise ValueError("gradient statistics must be non-negative")
    scale = batch_size / init_batch_size
    denominator = grad_var / scale + grad_sqr
    return (grad_var + grad_sqr) / denominator if denominator > 0 else 1.0


def statistical_efficiency(batch_size: float, init_batch_size: float, grad_sqr: float, grad_var: float) -> float:
    """Progress per sample at `batch_size` relative to `init_batch_size`: gain / scale, in (0, 1] for B ≥ B0."""
    return progress_gain(batch_size, init_batch_size, grad_sqr, grad_var) * init_batch_size / batch_size


def gradient_noise_scale(init_batch_size: float, grad_sqr: float, grad_var: float) -> float:
    """B_noise = B0 · tr(Σ) / |G|² (infinite with no gradient signal); efficiency = (B_noise + B0) / (B_noise + B)."""
    return float("inf") if grad_sqr <= 0 else init_batch_size * grad_var / grad_sqr
