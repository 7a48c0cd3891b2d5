"""Weighted water-filling: the max-min fair split of a capacity among capped demands.

Job j receives min(w_j · t, cap_j) with the level t chosen so that the total equals the
capacity (everyone gets its cap when the caps fit). This is the lexicographically max-min fair
point, an optimum of Gavel's max-min LP.
"""

from __future__ import annotations

import numpy as np


def water_fill(capacity: float, caps: np.ndarray, weights: np.ndarray) -> np.ndarray:
    caps = np.asarray(caps, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if caps.size == 0:
        return caps
    if caps.sum() <= capacity:
        return caps.copy()
    levels = caps / weights  # level at which each job saturates
    order = np.argsort(levels, kind="stable")
    remaining_capacity = capacity
    remaining_weight = weights.sum()
    level = 0.0
    for k in order:
        if levels[k] * remaining_weight <= remaining_capacity:
            remaining_capacity -= caps[k]
            remaining_weight -= weights[k]
        else:
            level = remaining_capacity / remaining_weight
            break
    return np.minimum(weights * level, caps)
