"""One round loop across operator replicas: a coordination.k8s.io Lease decides who runs it.

The holder renews the Lease every round; a replica takes it over only after it has gone unrenewed
for `lease_seconds`. A replica that does not hold the Lease runs no rounds, and so has no plans,
and the reconciler changes nothing without plans: followers only watch.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid

from kubernetes.client.exceptions import ApiException

from stretto.operator import kube

log = logging.getLogger(__name__)
DEFAULT_LEASE_SECONDS = 30  # how long a crashed leader's rounds wait for a successor


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    def __init__(self, namespace: str, name: str, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 identity: str | None = None) -> None:
        self.namespace, self.name, self.lease_seconds = namespace, name, lease_seconds
        self.identity = identity or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.leading = False

    def _spec(self, acquired: str | None = None, transitions: int = 0) -> dict[str, object]:
        now = _micro(_now())
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": acquired or now, "renewTime": now, "leaseTransitions": transitions}

    def try_lead(self) -> bool:
        """Acquire or renew the Lease; True while this replica holds it."""
        api = kube.coordination()
        try:
            lease = api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as error:
            if error.status != 404:
                return self._lost(f"cannot read Lease: {error.reason}")
            try:
                api.create_namespaced_lease(self.namespace, {"metadata": {"name": self.name}, "spec": self._spec()})
            except ApiException as create_error:
                return self._lost(f"another replica created the Lease first ({create_error.reason})")
            return self._won()
        spec = lease.spec
        holder = spec.holder_identity
        renewed = spec.renew_time or spec.acquire_time
        expired = renewed is None or (_now() - renewed).total_seconds() > (spec.lease_duration_seconds or 0)
        if holder not in (None, self.identity) and not expired:
            return self._lost(f"held by {holder}")
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = _micro(spec.acquire_time) if holder == self.identity and spec.acquire_time else None
        body = {"metadata": {"name": self.name, "resourceVersion": lease.metadata.resource_version},
                "spec": self._spec(acquired, transitions)}
        try:  # resourceVersion makes this a compare-and-swap: two replicas cannot both win
            api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as error:
            return self._lost(f"lost the race for the Lease ({error.reason})")
        return self._won()

    def _won(self) -> bool:
        if not self.leading:
            log.info("leading the round loop (Lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
        self.leading = True
        return True

    def _lost(self, why: str) -> bool:
        if self.leading:
            log.warning("no longer leading the round loop: %s", why)
        self.leading = False
        return False


class AlwaysLeader:
    """A single operator (the default): it always runs the rounds."""

    leading = True

    def try_lead(self) -> bool:
        return True
