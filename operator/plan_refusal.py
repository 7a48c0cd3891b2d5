"""A step of one job's plan the API server (or the client) refused: that job's condition, not the round's error."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from stretto.operator.job_status import Refusal


class PlanRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.summary)
        self.refusal = refusal


def namespace_terminating(error: ApiException) -> bool:
    return error.status == 403 and "NamespaceTerminating" in (error.body or "")


def refusal_of(what: str, error: ApiException) -> Refusal:
    """The API's own StatusReason and message (its Status body), or the HTTP reason when there is none."""
    try:
        body = json.loads(error.body or "")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return Refusal(what=what, reason=str(body.get("reason") or error.reason or error.status),
                   message=str(body.get("message") or error.reason or f"HTTP {error.status}"))


@contextlib.contextmanager
def refused_as(what: str) -> Iterator[None]:
    try:
        yield
    except ApiException as error:
        if namespace_terminating(error) or error.status == 404:
            raise  # the job is going away with its namespace
        raise PlanRefused(refusal_of(what, error)) from error
    except ValidationError as error:  # the client's own models refused the manifest before sending it
        first = error.errors()[0]
        message = f"{'.'.join(map(str, first['loc']))}: {first['msg']}"
        raise PlanRefused(Refusal(what=what, reason="ClientValidation", message=message,
                                  by="the operator's Kubernetes client")) from error
