"""Per-job progress tokens: minted from the operator key and the job's identity, checked in constant time."""

from __future__ import annotations

import pytest

from stretto import contracts
from stretto.operator.progress_tokens import (
    PROGRESS_TOKEN_KEY,
    TokenVerifier,
    generate_key,
    key_from_secret,
    key_secret,
    mint_token,
    progress_env,
    progress_secret,
    progress_secret_name,
    token_from_secret,
    verify_token,
)
from tests.operator.progress_fixtures import KEY, job_body, token

IDENTITY = {"namespace": "ns", "job": "job", "uid": "uid-1"}


def test_a_token_is_a_deterministic_hex_hmac():
    first = mint_token(KEY, **IDENTITY)
    assert first == mint_token(KEY, **IDENTITY)
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize("change", [
    {"namespace": "other-ns"}, {"job": "other-job"}, {"uid": "uid-2"},
], ids=["namespace", "job", "uid (same name re-created)"])
def test_a_token_opens_exactly_one_job(change):
    good = mint_token(KEY, **IDENTITY)
    other = IDENTITY | change
    assert mint_token(KEY, **other) != good
    assert not verify_token(KEY, **other, token=good)
    assert verify_token(KEY, **IDENTITY, token=good)


@pytest.mark.parametrize("forged", ["", "0" * 64, "not hex at all", "é" * 10],
                         ids=["empty", "zeros", "text", "unicode"])
def test_garbage_tokens_are_refused(forged):
    assert not verify_token(KEY, **IDENTITY, token=forged)


def test_another_key_mints_other_tokens_and_an_empty_key_is_an_error():
    assert mint_token(generate_key(), **IDENTITY) != mint_token(KEY, **IDENTITY)
    with pytest.raises(ValueError, match="must not be empty"):
        mint_token(b"", **IDENTITY)


def test_the_verifier_looks_up_the_uid_and_refuses_unknown_jobs():
    body = job_body()
    verify = TokenVerifier(KEY, lambda ns, name: "uid-job" if (ns, name) == ("ns", "job") else None)
    assert verify("ns", "job", token(body))
    assert not verify("ns", "ghost", token(body))
    assert not verify("ns", "job", token(job_body("other")))


def test_the_job_secret_holds_its_token_and_is_owned_by_the_job():
    body = job_body()
    secret = progress_secret(body, KEY)
    assert secret["metadata"]["name"] == progress_secret_name("job") == "job-progress"
    assert secret["metadata"]["namespace"] == "ns"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == "uid-job"
    assert secret["metadata"]["labels"][contracts.LABEL_JOB] == "job"
    assert token_from_secret(secret) == token(body)
    assert token_from_secret({"data": {}}) is None


def test_the_pod_env_points_at_the_secret():
    env = {e["name"]: e for e in progress_env("job", "http://stretto-operator.stretto-system:8081")}
    assert env["STRETTO_PROGRESS_URL"]["value"] == "http://stretto-operator.stretto-system:8081"
    ref = env["STRETTO_PROGRESS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "job-progress", "key": PROGRESS_TOKEN_KEY}


def test_the_operator_key_round_trips_through_its_secret():
    key = generate_key()
    assert len(key) == 32
    assert key_from_secret(key_secret("stretto-system", key)) == key
    assert key_from_secret({"data": {}}) is None
