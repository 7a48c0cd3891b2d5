"""The round's policy state (Gavel's and Shockwave's counters, time-share credits), kept where the next
leader finds it: the ConfigMap `stretto-policy-state` in the operator's namespace.

Written by the leader at most once a round and only when the state (or the round's position) changed;
read when a replica starts leading, so a restart or a failover resumes the counters and the round
numbering instead of starting them over. The state is stored for the scheduler configuration that
made it (another policy's state means nothing to this one), as compressed JSON (`binaryData`), with a
readable summary in `data`.
"""

from __future__ import annotations

import base64
import json
import logging
import zlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from kubernetes.client.exceptions import ApiException

from stretto.core.snapshots import PolicyState
from stretto.operator import kube
from stretto.operator.metrics import API_WRITES

POLICY_STATE_CONFIGMAP = "stretto-policy-state"
STATE_KEY = "state.json.z"
CONFIGMAP_LIMIT = 1024 * 1024          # bytes of data and binaryData together: the API server refuses more
MAX_STORED_BYTES = CONFIGMAP_LIMIT - 16 * 1024  # room for the object's metadata
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredRounds:
    """What a leader resumes from: the state, the configuration it belongs to, the next round's index."""

    scheduler: str          # the scheduler configuration (canonical JSON) the state was made under
    next_round: int
    state: PolicyState


def encode(stored: StoredRounds, leader: str) -> dict[str, Any]:
    """The ConfigMap's `data` and `binaryData`."""
    packed = zlib.compress(json.dumps(dict(stored.state), sort_keys=True, separators=(",", ":")).encode())
    return {"data": {"scheduler": stored.scheduler, "nextRound": str(stored.next_round), "leader": leader,
                     "jobs": str(len(stored.state.get("job_ids") or ()))},
            "binaryData": {STATE_KEY: base64.b64encode(packed).decode()}}


def stored_bytes(content: dict[str, Any]) -> int:
    """What `encode`'s ConfigMap content counts against the ConfigMap limit (keys and values)."""
    return sum(len(k) + len(v) for part in ("data", "binaryData") for k, v in content[part].items())


def decode(config_map: dict[str, Any]) -> StoredRounds | None:
    data, binary = config_map.get("data") or {}, config_map.get("binaryData") or {}
    try:
        state = json.loads(zlib.decompress(base64.b64decode(binary[STATE_KEY])))
        return StoredRounds(scheduler=data["scheduler"], next_round=int(data["nextRound"]),
                            state=MappingProxyType(state))
    except (KeyError, ValueError, zlib.error) as error:
        log.warning("ignoring an unreadable %s: %s", POLICY_STATE_CONFIGMAP, error)
        return None


class PolicyStore:
    def __init__(self, namespace: str, leader: str) -> None:
        self.namespace, self.leader = namespace, leader
        self._written: dict[str, Any] | None = None  # what this process last wrote (or read), to skip repeats

    def load(self) -> StoredRounds | None:
        try:
            found = kube.core().read_namespaced_config_map(POLICY_STATE_CONFIGMAP, self.namespace)
        except ApiException as error:
            if error.status == 404:
                self._written = None
                return None
            raise
        body = kube.api_client().sanitize_for_serialization(found)
        stored = decode(body)
        self._written = encode(stored, self.leader) if stored is not None else None
        return stored

    def save(self, stored: StoredRounds) -> bool:
        """Write `stored` unless it is what was last written or read, or it is too big for a ConfigMap (the
        round goes on with the state in memory; a new leader would start it over); True when it wrote."""
        content = encode(stored, self.leader)
        if self._written is not None and _same(self._written, content):
            return False
        size = stored_bytes(content)
        if size > MAX_STORED_BYTES:
            log.warning("the policy state of %d jobs is %d KiB compressed, over the %d KiB a ConfigMap holds: "
                        "not stored (a new leader would start it over)", len(stored.state.get("job_ids") or ()),
                        size // 1024, MAX_STORED_BYTES // 1024)
            return False
        body = {"metadata": {"name": POLICY_STATE_CONFIGMAP, "namespace": self.namespace}, **content}
        core = kube.core()
        if self._written is None:
            API_WRITES.labels("create", "configmaps").inc()
            try:
                core.create_namespaced_config_map(self.namespace, body)
            except ApiException as error:
                if error.status != 409:
                    raise
                API_WRITES.labels("update", "configmaps").inc()
                core.replace_namespaced_config_map(POLICY_STATE_CONFIGMAP, self.namespace, body)
        else:
            API_WRITES.labels("update", "configmaps").inc()
            core.replace_namespaced_config_map(POLICY_STATE_CONFIGMAP, self.namespace, body)
        self._written = content
        return True


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Same state and configuration (who wrote it, and the round it is for, alone are no reason to write)."""
    keep = ("scheduler",)
    return a["binaryData"] == b["binaryData"] and all(a["data"].get(k) == b["data"].get(k) for k in keep)
