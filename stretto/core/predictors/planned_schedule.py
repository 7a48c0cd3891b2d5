"""`planned-schedule`: use the job's known future batch-size schedule (an oracle).

Jobs with no planned schedule fall back to their current batch size, so the predictor also
works on operator snapshots. Its remaining times are the ones the peers' baselines use.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from stretto.core.decisions import Predictions
from stretto.core.predictors.schedule_forecast import forecast_job
from stretto.core.snapshots import ClusterSnapshot

NAME = "planned-schedule"


class PlannedScheduleArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ARGS = PlannedScheduleArgs


class PlannedSchedulePredictor:
    name: ClassVar[str] = NAME
    oracle: ClassVar[bool] = True

    def __init__(self, args: PlannedScheduleArgs) -> None:
        self.args = args

    def predict(self, snapshot: ClusterSnapshot) -> Predictions:
        return Predictions(
            {j.job_id: forecast_job(j, j.planned_batch_sizes or ((0, j.batch_size),)) for j in snapshot.jobs}
        )


def build(args: PlannedScheduleArgs) -> PlannedSchedulePredictor:
    return PlannedSchedulePredictor(args)
