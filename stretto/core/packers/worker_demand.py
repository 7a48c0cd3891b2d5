"""How much CPU and memory a worker asks for, per node: proportional, ideal, or the lower of the two."""

from __future__ import annotations

import numpy as np

from stretto.core.packers.node_ledger import NodeLedger
from stretto.core.snapshots import JobState


def proportional_demand(job: JobState, ledger: NodeLedger) -> tuple[np.ndarray, np.ndarray]:
    """Per worker, per node: the node's CPUs and memory per GPU times the worker's GPUs."""
    return ledger.cpu_per_gpu * job.gpus_per_worker, ledger.memory_per_gpu * job.gpus_per_worker


def ideal_demand(job: JobState, ledger: NodeLedger) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Per worker: the profile's ideal CPU and memory per GPU, capped so a worker fits an empty node.

    Without a sensitivity profile the ideal is the proportional share.
    """
    sens = job.profile.sensitivity
    if sens is None:
        return proportional_demand(job, ledger)
    g = job.gpus_per_worker
    return (
        min(sens.ideal_cpu_per_gpu * g, ledger.max_node_cpus),
        min(sens.ideal_memory_gib_per_gpu * g, ledger.max_node_memory),
    )


def lowered_demand(job: JobState, ledger: NodeLedger) -> tuple[np.ndarray, np.ndarray]:
    """Per worker, per node: the ideal lowered to the proportional share in every dimension above it."""
    ideal_c, ideal_m = ideal_demand(job, ledger)
    prop_c, prop_m = proportional_demand(job, ledger)
    return np.minimum(ideal_c, prop_c), np.minimum(ideal_m, prop_m)


def exceeds_proportional(job: JobState, ledger: NodeLedger) -> bool:
    ideal_c, ideal_m = ideal_demand(job, ledger)
    prop_c, prop_m = proportional_demand(job, ledger)
    return bool(np.any(np.asarray(ideal_c) > prop_c + 1e-9) or np.any(np.asarray(ideal_m) > prop_m + 1e-9))
