"""`current-batch`: assume the job keeps its current batch size to the end (no foresight).

What the operator can always do; a baseline for the Bayesian regime predictor to beat.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Predictions
from stretto.core.predictors.schedule_forecast import forecast_job
from stretto.core.snapshots import ClusterSnapshot

NAME = "current-batch"


class CurrentBatchArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = CurrentBatchArgs


class CurrentBatchPredictor:
    name: ClassVar[str] = NAME
    oracle: ClassVar[bool] = False

    def __init__(self, args: CurrentBatchArgs) -> None:
        self.args = args

    def predict(self, snapshot: ClusterSnapshot) -> Predictions:
        return Predictions({j.job_id: forecast_job(j, ((0, j.batch_size),)) for j in snapshot.jobs})


def build(args: CurrentBatchArgs) -> CurrentBatchPredictor:
    return CurrentBatchPredictor(args)
