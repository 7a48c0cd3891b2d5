"""What each stage of the round hands to the next, and what the round returns.

predictor → `Predictions`; policy → `Shares` (GPUs per job, in priority order); packer →
`Placement` (CPU, memory and GPUs per worker); the round bundles them into a `RoundDecision`.
A job that does not run this round appears in `RoundDecision.waiting` with a reason a user can
read, never silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from stretto.core.snapshots import EMPTY_STATE, JobAllocation, PolicyState


@dataclass(frozen=True, slots=True)
class JobPrediction:
    job_id: str
    remaining_samples: float
    remaining_seconds: float  # on its requested GPUs at the GPU-proportional share, predicted batch sizes
    remaining_seconds_ideal: float  # same, at the job's ideal CPU and memory
    isolated_seconds: float  # whole job from scratch on its requested GPUs, proportional share
    remaining_epochs_by_batch_size: Mapping[int, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Predictions:
    jobs: Mapping[str, JobPrediction]

    def __getitem__(self, job_id: str) -> JobPrediction:
        return self.jobs[job_id]


@dataclass(frozen=True, slots=True)
class ShareRequest:
    job_id: str
    gpus: int


@dataclass(frozen=True, slots=True)
class Shares:
    """GPU requests in priority order; the packer places them in this order, skipping what does
    not fit. `waiting` gives the policy's reason for every active job it did not request."""

    requests: tuple[ShareRequest, ...]
    waiting: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    policy_state: PolicyState = field(default_factory=lambda: EMPTY_STATE)
    # The batch the policy chose for a `goodput` job with its GPUs; a job left out picks its own goodput-best.
    batch_sizes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class Placement:
    allocations: tuple[JobAllocation, ...]
    unplaced: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class RoundTimings:
    predict_s: float
    share_s: float
    pack_s: float

    @property
    def total_s(self) -> float:
        return self.predict_s + self.share_s + self.pack_s


@dataclass(frozen=True, slots=True)
class RoundDecision:
    round_index: int
    allocations: Mapping[str, JobAllocation]
    waiting: Mapping[str, str]
    predictions: Predictions
    policy_state: PolicyState
    timings: RoundTimings
    batch_sizes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))  # `Shares.batch_sizes`
