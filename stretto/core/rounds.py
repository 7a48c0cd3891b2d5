"""One scheduling round: predict → share → pack, a pure function of a snapshot.

The simulator (virtual time) and the operator (wall time) both call `run_round`; nothing in
here reads a clock except to time the stages for reporting, and nothing branches on a
plugin's name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field

from stretto.core.decisions import RoundDecision, RoundTimings
from stretto.core.plugins import Packer, Policy, Predictor
from stretto.core.registries import PluginSpec, builtin_packers, builtin_policies, builtin_predictors
from stretto.core.snapshots import ClusterSnapshot

UNREQUESTED_REASON = "not selected by the policy this round"


class RoundConfig(BaseModel):
    """Which plugins a round uses: the shape of the `scheduler:` block of the operator's config.

    Its defaults are Stretto's one default round (the operator, the demo, the chart and the README).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    predictor: PluginSpec = Field(default_factory=lambda: PluginSpec(name="bayesian-regime"))
    policy: PluginSpec = Field(default_factory=lambda: PluginSpec(name="elastic"))
    packer: PluginSpec = Field(default_factory=lambda: PluginSpec(name="proportional"))


@dataclass(frozen=True, slots=True)
class RoundPlugins:
    predictor: Predictor
    policy: Policy
    packer: Packer


def build_plugins(config: RoundConfig) -> RoundPlugins:
    """Build the plugins from the built-in registries; bad names or args raise ValueError."""
    return RoundPlugins(
        predictor=builtin_predictors().build(config.predictor),
        policy=builtin_policies().build(config.policy),
        packer=builtin_packers().build(config.packer),
    )


def run_round(snapshot: ClusterSnapshot, plugins: RoundPlugins) -> RoundDecision:
    # 1. Predict each job's remaining work and time.
    t0 = time.perf_counter()
    predictions = plugins.predictor.predict(snapshot)
    # 2. Share: GPUs per job, in priority order.
    t1 = time.perf_counter()
    shares = plugins.policy.share(snapshot, predictions)
    # 3. Pack: CPU and memory per worker, nodes and GPUs.
    t2 = time.perf_counter()
    placement = plugins.packer.pack(snapshot, shares)
    t3 = time.perf_counter()
    # 4. Every active job that does not run gets a reason.
    allocations = {a.job_id: a for a in placement.allocations}
    waiting: dict[str, str] = {}
    for job in snapshot.jobs:
        if job.job_id in allocations:
            continue
        waiting[job.job_id] = placement.unplaced.get(job.job_id) or shares.waiting.get(job.job_id) or UNREQUESTED_REASON
    return RoundDecision(
        round_index=snapshot.round_index,
        allocations=MappingProxyType(allocations),
        waiting=MappingProxyType(waiting),
        predictions=predictions,
        policy_state=shares.policy_state,
        timings=RoundTimings(predict_s=t1 - t0, share_s=t2 - t1, pack_s=t3 - t2),
        batch_sizes=MappingProxyType({i: b for i, b in shares.batch_sizes.items() if i in allocations}),
    )
