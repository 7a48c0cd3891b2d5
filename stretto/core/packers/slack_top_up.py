"""Where workers cannot move: after a round is placed, new workers take the slack it left, up to their ideal.

`place_reserving` grants a job more than its proportional share only out of a node's slack at the
moment the job is placed, and a free GPU's proportional share is never slack. Jobs placed later in
the same round often take less than their share (a CPU-light job on a CPU-rich node), so the slack
that decides a sensitive job's speed for its whole life exists only once the round is placed. This
pass gives it out, in the policy's order, to the workers created this round (running workers are
pinned at what they were created with): each worker grows towards its ideal CPU and memory, by at
most the node's free amount beyond the proportional share of the GPUs still free. No job gets less
than before, and every free GPU keeps its proportional share.
"""

from __future__ import annotations

import numpy as np

from stretto.core.decisions import Shares
from stretto.core.packers.node_ledger import EPS, NodeLedger
from stretto.core.packers.worker_demand import ideal_demand
from stretto.core.snapshots import ClusterSnapshot


def top_up_new_workers(snapshot: ClusterSnapshot, shares: Shares, ledger: NodeLedger) -> None:
    jobs = {j.job_id: j for j in snapshot.jobs}
    for request in shares.requests:
        job, workers = jobs.get(request.job_id), ledger.placed.get(request.job_id)
        if job is None or not workers:
            continue
        ideal_c, ideal_m = (np.broadcast_to(np.asarray(d, dtype=float), ledger.free_gpus.shape)
                            for d in ideal_demand(job, ledger))  # per worker, per node
        for w in workers:
            if w.pinned or w.shared_with is not None:
                continue
            node = w.node
            slack_c = ledger.free_cpus[node] - ledger.cpu_per_gpu[node] * ledger.free_gpus[node]
            slack_m = ledger.free_memory[node] - ledger.memory_per_gpu[node] * ledger.free_gpus[node]
            more_c = min(max(0.0, float(ideal_c[node]) - w.cpus), max(0.0, float(slack_c)))
            more_m = min(max(0.0, float(ideal_m[node]) - w.memory_gib), max(0.0, float(slack_m)))
            if more_c > EPS:
                w.cpus += more_c
                ledger.free_cpus[node] -= more_c
            if more_m > EPS:
                w.memory_gib += more_m
                ledger.free_memory[node] -= more_m
