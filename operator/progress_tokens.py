"""Per-job progress tokens: who may report progress for which TrainingJob.

A job's token is HMAC-SHA256(operator key, "<namespace>/<name>/<uid>") in hex. The operator keeps
no token table: it recomputes the token of the job a report claims and compares in constant time,
so a token opens exactly one job, and a job deleted and re-created under the same name (new uid)
gets a new token. The token reaches the workers through the job's `<job>-progress` Secret (owned
by the job, so it goes with it) and a secretKeyRef env var; the key lives in a Secret of its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from typing import Any

from stretto import contracts
from stretto.operator.pod_builder import owner_reference
from stretto.sdk.environment import ENV_PROGRESS_TOKEN, ENV_PROGRESS_URL
from stretto.sdk.environment import PROGRESS_TOKEN_KEY as PROGRESS_TOKEN_KEY  # re-exported for the operator
from stretto.sdk.environment import progress_secret_name as progress_secret_name
from stretto.sdk.environment import token_from_secret as token_from_secret

OPERATOR_KEY_SECRET = "stretto-progress-key"  # the operator's HMAC key, in the operator's namespace
OPERATOR_KEY_KEY = "key"
KEY_BYTES = 32


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def mint_token(key: bytes, *, namespace: str, job: str, uid: str) -> str:
    if not key:
        raise ValueError("the progress token key must not be empty")
    message = f"{namespace}/{job}/{uid}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def verify_token(key: bytes, *, namespace: str, job: str, uid: str, token: str) -> bool:
    """Whether `token` authorizes reports for this job (constant-time compare)."""
    expected = mint_token(key, namespace=namespace, job=job, uid=uid)
    return hmac.compare_digest(expected.encode(), token.encode(errors="replace"))


class TokenVerifier:
    """`verify(namespace, job, token)` for the progress server; `uid_of` reads the operator's cache.

    A job the operator does not know (uid_of returns None) is refused like a wrong token, so the
    answer does not tell a caller which jobs exist.
    """

    def __init__(self, key: bytes, uid_of: Callable[[str, str], str | None]) -> None:
        self._key = key
        self._uid_of = uid_of

    def __call__(self, namespace: str, job: str, token: str) -> bool:
        uid = self._uid_of(namespace, job)
        return uid is not None and verify_token(self._key, namespace=namespace, job=job, uid=uid, token=token)


def progress_secret(job_body: dict[str, Any], key: bytes) -> dict[str, Any]:
    """The `<job>-progress` Secret holding the job's token, owned by the job."""
    metadata = job_body["metadata"]
    token = mint_token(key, namespace=metadata.get("namespace", "default"), job=metadata["name"],
                       uid=metadata["uid"])
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": progress_secret_name(metadata["name"]),
            "namespace": metadata.get("namespace", "default"),
            "labels": {contracts.LABEL_JOB: metadata["name"], contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY},
            "ownerReferences": [owner_reference(job_body)],
        },
        "data": {PROGRESS_TOKEN_KEY: base64.b64encode(token.encode()).decode()},
    }


def progress_env(job_name: str, progress_url: str) -> list[dict[str, Any]]:
    """The env entries the pod builder adds to the training container."""
    return [
        {"name": ENV_PROGRESS_URL, "value": progress_url},
        {"name": ENV_PROGRESS_TOKEN, "valueFrom": {"secretKeyRef": {
            "name": progress_secret_name(job_name), "key": PROGRESS_TOKEN_KEY}}},
    ]


def key_from_secret(secret: dict[str, Any]) -> bytes | None:
    encoded = (secret.get("data") or {}).get(OPERATOR_KEY_KEY)
    return base64.b64decode(encoded) if encoded else None


def key_secret(namespace: str, key: bytes) -> dict[str, Any]:
    """The Secret holding the operator's HMAC key (created once; every replica reads it)."""
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": OPERATOR_KEY_SECRET, "namespace": namespace,
                     "labels": {contracts.LABEL_MANAGED_BY: contracts.MANAGED_BY}},
        "data": {OPERATOR_KEY_KEY: base64.b64encode(key).decode()},
    }
