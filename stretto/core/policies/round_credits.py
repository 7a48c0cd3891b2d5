"""From a window plan (rounds per job) to this round's order: credits, as in stride scheduling.

A plan says job j should run in n_j of the next T rounds, x_j = n_j/T of the time. Plans are
recomputed often (every arrival and completion), so running "the first round of the plan"
would always favour the same jobs. Instead each job keeps a credit: +x_j per round, −1 per
round it ran; jobs are ordered by credit, so over any stretch each job runs its planned fraction.
A job that ran last round gets `stickiness` extra, which lengthens runs and saves restores.
Credits are clipped to [-1, 2] so a plan change does not leave a debt or a hoard behind.
"""

from __future__ import annotations

from collections.abc import Mapping

from stretto.core.snapshots import ClusterSnapshot

CREDIT_RANGE = (-1.0, 2.0)


def update_credits(
    snapshot: ClusterSnapshot, fractions: Mapping[str, float], previous_credits: Mapping[str, float]
) -> dict[str, float]:
    """Credits after paying for last round's runs and earning this round's planned fractions."""
    low, high = CREDIT_RANGE
    credits = {}
    for job in snapshot.jobs:
        c = previous_credits.get(job.job_id, 0.0) - (1.0 if job.job_id in snapshot.previous else 0.0)
        credits[job.job_id] = min(high, max(low, c + fractions.get(job.job_id, 0.0)))
    return credits


def credit_order(
    snapshot: ClusterSnapshot,
    credits: Mapping[str, float],
    fractions: Mapping[str, float],
    log_weights: Mapping[str, float],
    finishing: Mapping[str, float],
    *,
    stickiness: float,
    full_share: float = 0.9,
) -> list[str]:
    """Jobs with a planned share, in three classes.

    0. Planned for (nearly) every round of the window (share ≥ `full_share`) and owed a whole
       round (credit plus `stickiness` if it ran last round ≥ 1): the plan runs it whatever the
       order; by credit.
    1. Planned to finish inside the window (`finishing`: its planned rounds): run now, fewest
       rounds first, heaviest priority weight first among equals — a plan's order inside the
       window is free, and finishing short jobs first frees their GPUs soonest and is how
       Shockwave's reordering puts heavy (late) jobs early.
    2. The rest: heaviest priority weight (log weight ℓ, default 0), then credit.
    """
    ranked = []
    for i, j in enumerate(snapshot.jobs):
        x = fractions.get(j.job_id, 0.0)
        if x <= 0:
            continue
        lw = log_weights.get(j.job_id, 0.0)
        credit = credits[j.job_id] + (stickiness if j.job_id in snapshot.previous else 0.0)
        if x >= full_share and credit >= 1.0:
            ranked.append((0, -credit, 0.0, i, j.job_id))
        elif j.job_id in finishing:
            ranked.append((1, finishing[j.job_id], -lw, i, j.job_id))
        else:
            ranked.append((2, -lw, -credit, i, j.job_id))
    return [r[-1] for r in sorted(ranked)]
