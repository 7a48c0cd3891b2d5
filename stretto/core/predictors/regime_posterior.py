"""Shockwave's Bayesian regime model: a Dirichlet over how many epochs a job spends at each batch size.

A job of E epochs may use the batch sizes B (its regimes). The prior gives every regime the same
concentration α_b = E/|B| (total mass E: as confident as one full run). Observing c_b completed
epochs at b gives the posterior α_b + c_b; the expected number of epochs at b over the whole job
is then E·(α_b + c_b)/Σ(α + c), of which c_b are already behind it. What is left is floored at
zero and rescaled so the remaining epochs add up to what the job still has to run.

Only completed epochs are evidence: the schedule itself is never read, so the model can be wrong
early and converges as the job runs (GNS jobs double late, so their early forecast is a blend).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def completed_epochs_by_batch_size(history: Sequence[tuple[int, int]], epochs_done: int) -> dict[int, int]:
    """Completed epochs 0..epochs_done-1 per batch size, from a run-length (first epoch, batch) history."""
    counts: dict[int, int] = {}
    for k, (first, batch) in enumerate(history):
        end = history[k + 1][0] if k + 1 < len(history) else epochs_done
        n = max(0, min(end, epochs_done) - first)
        if n:
            counts[batch] = counts.get(batch, 0) + n
    return counts


def expected_remaining_epochs(
    *,
    total_epochs: float,
    regimes: Sequence[int],
    completed: Mapping[int, int],
    remaining_epochs: float,
) -> dict[int, float]:
    """Posterior-mean epochs still to run at each regime, summing to `remaining_epochs`."""
    sizes = sorted(set(regimes) | set(completed))
    if remaining_epochs <= 0 or not sizes:
        return {}
    prior = total_epochs / len(sizes)
    alpha = {b: prior + completed.get(b, 0) for b in sizes}
    mass = sum(alpha.values())
    left = {b: max(0.0, total_epochs * alpha[b] / mass - completed.get(b, 0)) for b in sizes}
    total_left = sum(left.values())
    if total_left <= 0:  # every regime already over its share: spread evenly
        return dict.fromkeys(sizes, remaining_epochs / len(sizes))
    return {b: remaining_epochs * v / total_left for b, v in left.items() if v > 0}
