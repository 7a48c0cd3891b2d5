"""`allox`: AlloX's min-cost matching of waiting jobs to (GPU, position) slots (as in Gavel).

Running jobs keep their GPUs (non-preemptive). Among the waiting jobs, the oldest
max(⌈α·m⌉, free GPUs) are matched to slots (g, k) — on free GPU g, the k-th job counted from
the end — at cost k·p_j, p_j the job's remaining GPU-seconds (remaining time × its GPUs: a gang
counts as one job that occupies g_j GPUs, an approximation of AlloX for multi-GPU jobs). A job
k-th from the end delays k completions, so the matching minimises the total completion time.
The free GPUs are interchangeable, so the matching is solved as the equivalent min-cost flow
(jobs → positions, each position holding as many jobs as there are free GPUs) with OR-Tools'
SimpleMinCostFlow: n × positions arcs instead of n × GPUs × positions. Each GPU runs its first
job, so jobs are requested by position from the front (highest k first), shortest first within
a position. (Gavel adds the waiting time to each cost; it is a constant per job and does not
change the matching, so it is left out.)
"""

from __future__ import annotations

import math
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import Predictions, ShareRequest, Shares
from stretto.core.snapshots import ClusterSnapshot, JobState

NAME = "allox"
OUTSIDE_WINDOW = "outside AlloX's window of the oldest waiting jobs"
COST_SCALE = 1000  # the assignment solver takes integer costs: milli-GPU-seconds


class AlloxArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    alpha: float = Field(0.2, gt=0.0, le=1.0, description="fraction of waiting jobs considered (AlloX's α)")


ARGS = AlloxArgs


class AlloxPolicy:
    name: ClassVar[str] = NAME

    def __init__(self, args: AlloxArgs) -> None:
        self.args = args

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares:
        import numpy as np
        from ortools.graph.python import min_cost_flow

        running = [j for j in snapshot.jobs if j.job_id in snapshot.previous]
        waiting_jobs = sorted(
            (j for j in snapshot.jobs if j.job_id not in snapshot.previous),
            key=lambda j: (j.arrival_s, j.job_id),
        )
        free = snapshot.total_gpus - sum(snapshot.previous[j.job_id].gpus for j in running)
        window = min(len(waiting_jobs), max(math.ceil(self.args.alpha * len(waiting_jobs)), free))
        candidates, left_out = waiting_jobs[:window], waiting_jobs[window:]
        order: list[JobState] = sorted(running, key=lambda j: (j.arrival_s, j.job_id))
        if candidates:
            lanes = max(1, min(free, len(candidates)))
            positions = math.ceil(len(candidates) / lanes)
            costs = [
                max(1, round(COST_SCALE * predictions[j.job_id].remaining_seconds * j.max_gpus)) for j in candidates
            ]
            # Nodes: source 0, jobs 1..n, positions n+1..n+P, sink n+P+1.
            n, sink = len(candidates), len(candidates) + positions + 1
            flow = min_cost_flow.SimpleMinCostFlow()
            job_nodes = np.arange(1, n + 1)
            flow.add_arcs_with_capacity_and_unit_cost(
                np.zeros(n, dtype=np.int64),
                job_nodes,
                np.ones(n, dtype=np.int64),
                np.zeros(n, dtype=np.int64),
            )
            tails = np.repeat(job_nodes, positions)
            heads = np.tile(np.arange(n + 1, n + positions + 1), n)
            unit_costs = np.repeat(np.array(costs, dtype=np.int64), positions) * np.tile(
                np.arange(1, positions + 1, dtype=np.int64), n
            )
            job_arcs = flow.add_arcs_with_capacity_and_unit_cost(
                tails, heads, np.ones(n * positions, dtype=np.int64), unit_costs
            )
            flow.add_arcs_with_capacity_and_unit_cost(
                np.arange(n + 1, n + positions + 1),
                np.full(positions, sink),
                np.full(positions, lanes, dtype=np.int64),
                np.zeros(positions, dtype=np.int64),
            )
            flow.set_nodes_supplies(np.array([0, sink]), np.array([n, -n]))
            if flow.solve() != flow.OPTIMAL:  # the positions always hold every candidate
                raise RuntimeError("AlloX min-cost flow failed")
            used = np.asarray(flow.flows(job_arcs)).reshape(n, positions)
            position = {i: int(np.argmax(used[i])) for i in range(n)}
            order += [candidates[i] for i in sorted(position, key=lambda i: (-position[i], costs[i], i))]
        return Shares(
            tuple(ShareRequest(j.job_id, j.max_gpus) for j in order),
            waiting={j.job_id: OUTSIDE_WINDOW for j in left_out},
            policy_state=snapshot.policy_state,
        )


def build(args: AlloxArgs) -> AlloxPolicy:
    return AlloxPolicy(args)
