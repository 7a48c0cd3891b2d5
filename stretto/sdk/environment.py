"""The environment a Stretto worker pod carries, and the wire path of progress reports.

The operator's pod builder sets these variables on every worker container; the SDK reads them.
`STRETTO_PROGRESS_URL` is the operator's progress endpoint base (e.g. `http://stretto-operator.
stretto-system:8081`); the SDK appends `PROGRESS_PATH`. `STRETTO_PROGRESS_TOKEN` comes from the
job's `<job>-progress` Secret (key `token`) and authorizes reports for that job only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

ENV_PROGRESS_URL = "STRETTO_PROGRESS_URL"
ENV_PROGRESS_TOKEN = "STRETTO_PROGRESS_TOKEN"
ENV_JOB_NAME = "STRETTO_JOB_NAME"
ENV_JOB_NAMESPACE = "STRETTO_JOB_NAMESPACE"
ENV_WORKER_INDEX = "STRETTO_WORKER_INDEX"

PROGRESS_PATH = "/v1/progress"
PROGRESS_TOKEN_KEY = "token"  # key of the token in the job's `<job>-progress` Secret
HEALTH_PATH = "/healthz"


def progress_endpoint(base_url: str) -> str:
    """The report URL for a base URL; a base that already ends in the path is taken as is."""
    base = base_url.rstrip("/")
    return base if base.endswith(PROGRESS_PATH) else base + PROGRESS_PATH


def progress_secret_name(job_name: str) -> str:
    """The Secret, owned by the job, whose `token` key the workers' STRETTO_PROGRESS_TOKEN refers to."""
    return f"{job_name}-progress"


def token_from_secret(secret: Mapping[str, Any]) -> str | None:
    """The token in a `<job>-progress` Secret as the API returns it (base64 `data`)."""
    encoded = (secret.get("data") or {}).get(PROGRESS_TOKEN_KEY)
    return base64.b64decode(encoded).decode() if encoded else None
