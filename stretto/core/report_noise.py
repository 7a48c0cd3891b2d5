"""Telemetry noise on a reported samples/s: what the training emulator plays and the simulator's learned view draws.

Symphony: counters are off by up to 40 %, and sometimes wildly. A report is an outlier with probability
`outlier_fraction`: the true rate times a factor log-uniform in `outlier_factor`. Otherwise it is the
true rate times a log-normal factor of mean 1 and sd `noise` (so reports average to the true rate, as a
rate measured over an interval does). Each job draws from its own stream, seeded by (seed, job) only,
so one job's reports do not depend on the others'.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportNoiseModel:
    """The multiplicative noise on a reported samples/s, one stream per job."""

    noise: float = 0.1  # relative sd of the multiplicative log-normal factor (mean 1)
    outlier_fraction: float = 0.05
    outlier_factor: tuple[float, float] = (0.3, 3.0)
    seed: int = 0

    def __post_init__(self) -> None:
        low, high = self.outlier_factor
        if not (0 <= self.noise <= 1 and 0 <= self.outlier_fraction <= 1 and 0 < low <= high):
            raise ValueError(f"report noise needs 0 <= noise, outlier fraction <= 1 and 0 < low <= high, got {self}")

    def stream(self, job_id: str) -> random.Random:
        """A job's own generator: its draws depend on the seed and the job only, not on the other jobs."""
        digest = hashlib.sha256(f"{self.seed}/{job_id}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def draw(self, rng: random.Random) -> tuple[float, bool]:
        """One report's factor on the true samples/s, and whether the report is an outlier."""
        if rng.random() < self.outlier_fraction:
            low, high = self.outlier_factor
            return math.exp(rng.uniform(math.log(low), math.log(high))), True
        log_sd = math.sqrt(math.log1p(self.noise**2))
        return (1.0 if log_sd == 0 else math.exp(rng.gauss(-log_sd**2 / 2, log_sd))), False

    def factor(self, rng: random.Random) -> float:
        """What one report's true samples/s is multiplied by."""
        return self.draw(rng)[0]
