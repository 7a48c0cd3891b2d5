"""The three extension points of the round, one small Protocol each.

Contract for all three: the snapshot (and the earlier stages' outputs) are read-only; the output
is a deterministic function of the inputs and the plugin's args; infeasibility is data (a job
waits with a reason), never an exception. An exception means a bug.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, runtime_checkable

from stretto.core.decisions import Placement, Predictions, Shares
from stretto.core.snapshots import ClusterSnapshot


@runtime_checkable
class Predictor(Protocol):
    """Estimates each job's remaining work and time (and, later, its batch-size regimes).

    `oracle` is True for a predictor that reads what a live cluster cannot know (a simulated job's
    future batch-size schedule): results with it are labelled oracle results.
    """

    name: ClassVar[str]
    oracle: ClassVar[bool]

    def predict(self, snapshot: ClusterSnapshot) -> Predictions: ...


@runtime_checkable
class Policy(Protocol):
    """Decides how many GPUs each job gets, as requests in priority order.

    Each request lies within the job's elastic range and is a whole number of workers. The
    policy may ask for more GPUs than the cluster has: the packer places in order and skips
    requests that do not fit. State the policy needs next round goes in `Shares.policy_state`
    (JSON-serialisable) and comes back as `snapshot.policy_state`.
    """

    name: ClassVar[str]

    def share(self, snapshot: ClusterSnapshot, predictions: Predictions) -> Shares: ...


@runtime_checkable
class Packer(Protocol):
    """Chooses CPU and memory per worker and the node/GPU placement of the requested shares.

    Never exceeds any node's GPUs, CPUs or memory, never gives a GPU twice, places a job's
    gang whole or not at all, and never gives a job more GPUs than it requested.
    """

    name: ClassVar[str]

    def pack(self, snapshot: ClusterSnapshot, shares: Shares) -> Placement: ...
