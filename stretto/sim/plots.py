"""PNG plots of a comparison: JCT CDF, ρ CDF and GPU/CPU/memory utilisation over time."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stretto.sim.metrics import UNFAIR_RHO, rhos
from stretto.sim.simulator import SimulationResult


def _cdf(ax, values: np.ndarray, label: str) -> None:  # type: ignore[no-untyped-def]
    xs = np.sort(values)
    ax.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", label=label)


def write_plots(results: Mapping[str, SimulationResult], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, result in results.items():
        _cdf(ax, np.array([o.jct_s for o in result.outcomes]) / 3600.0, label)
    ax.set(xlabel="job completion time (h)", ylabel="fraction of jobs", title="JCT CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    written.append(out / "jct_cdf.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, result in results.items():
        _cdf(ax, rhos(result), label)
    ax.axvline(UNFAIR_RHO, color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="finish-time fairness ρ", ylabel="fraction of jobs", title="ρ CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    written.append(out / "rho_cdf.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    for label, result in results.items():
        t = np.array([r.time_s for r in result.rounds]) / 3600.0
        for ax, attr in zip(axes, ("gpu_utilisation", "cpu_utilisation", "memory_utilisation"), strict=True):
            ax.plot(t, [getattr(r, attr) for r in result.rounds], label=label, linewidth=1)
    for ax, name in zip(axes, ("GPU", "CPU", "memory"), strict=True):
        ax.set(ylabel=f"{name} allocated", ylim=(0, 1.05))
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (h)")
    axes[0].legend(fontsize="small")
    fig.tight_layout()
    written.append(out / "utilisation.png")
    fig.savefig(written[-1], dpi=120)
    plt.close(fig)
    return written
