"""One round loop across replicas: the Lease elector against the real API server."""

from __future__ import annotations

import time

import pytest

from stretto.operator import kube
from stretto.operator.leader import LeaseElector
from tests.integration.harness import Harness


@pytest.fixture
def operator_api(harness: Harness, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KUBECONFIG", str(harness.kubeconfig))
    kube.api_client.cache_clear()
    yield
    kube.api_client.cache_clear()


def test_one_replica_leads_and_another_takes_over_only_after_the_lease_lapses(operator_api, namespace):
    first = LeaseElector(namespace, "rounds", lease_seconds=2, identity="replica-a")
    second = LeaseElector(namespace, "rounds", lease_seconds=2, identity="replica-b")
    assert first.try_lead() is True
    assert second.try_lead() is False          # held and fresh
    assert first.try_lead() is True            # renewing keeps it
    time.sleep(2.5)                            # replica-a stops renewing (crashed)
    assert second.try_lead() is True
    assert first.try_lead() is False and first.leading is False
    lease = kube.coordination().read_namespaced_lease("rounds", namespace)
    assert lease.spec.holder_identity == "replica-b" and lease.spec.lease_transitions == 1
