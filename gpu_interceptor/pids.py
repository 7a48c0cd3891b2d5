"""Which container a GPU process belongs to.

NVML reports host pids. In Kubernetes the daemon runs in the host PID namespace and maps a pid
to its pod and container through /proc/<pid>/cgroup (``CgroupPidResolver``). Without containers
(standalone nodes, tests), the pids the shim processes record in their ledger are already the
pids NVML reports (``LedgerPidResolver``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from . import shares as shares_mod


class PidResolverFn(Protocol):
    def __call__(self, pids: Iterable[int], containers: Mapping[str, shares_mod.ContainerShare],
                 ledger_pids: Mapping[str, tuple[int, ...]]) -> dict[int, str]:
        """Map each pid it can place to a container key."""
        ...


def resolve_by_ledger(pids: Iterable[int], containers: Mapping[str, shares_mod.ContainerShare],
                      ledger_pids: Mapping[str, tuple[int, ...]]) -> dict[int, str]:
    del containers
    owner = {pid: key for key, ps in ledger_pids.items() for pid in ps}
    return {pid: owner[pid] for pid in pids if pid in owner}


def container_of_cgroup(cgroup_text: str, containers: Mapping[str, shares_mod.ContainerShare]) -> str | None:
    """The container whose pod UID (and, when known, container id) appears in a cgroup file."""
    for key, share in containers.items():
        uid_forms = (share.pod_uid, share.pod_uid.replace("-", "_"))
        if not any(u in cgroup_text for u in uid_forms):
            continue
        if share.container_id and share.container_id not in cgroup_text:
            continue
        return key
    return None


def make_cgroup_resolver(proc: Path = Path("/proc")) -> PidResolverFn:
    def resolve(pids: Iterable[int], containers: Mapping[str, shares_mod.ContainerShare],
                ledger_pids: Mapping[str, tuple[int, ...]]) -> dict[int, str]:
        del ledger_pids
        out = {}
        for pid in pids:
            try:
                text = (proc / str(pid) / "cgroup").read_text()
            except OSError:
                continue
            key = container_of_cgroup(text, containers)
            if key is not None:
                out[pid] = key
        return out

    return resolve
