"""The values the extender decides on: what a pod asks for, and what a node has left.

Frozen and Kubernetes-free. `demand` builds `PodDemand` from a Pod object; `cluster_cache`
builds a fresh `NodeView` whenever a node or a booking on it changes, so a decision reads a
consistent view without holding the cache's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# Assumed device memory when a node lacks the nvidia.com/gpu.memory label (an A100/H100 80 GB part).
DEFAULT_GPU_MEMORY_MIB = 80 * 1024
MIB = 2**20
FULL_UTILIZATION = 100  # percent; the sum of a device's guaranteed shares may not exceed it


@dataclass(frozen=True, slots=True)
class ShareSpec:
    """A fraction of one device: a memory cap and a utilization band (percent)."""

    memory_bytes: int
    min_utilization: int = 0
    max_utilization: int = FULL_UTILIZATION


@dataclass(frozen=True, slots=True)
class PodDemand:
    """What a pod needs from a node. `whole_gpus` and `share` never both apply."""

    namespace: str
    name: str
    uid: str
    whole_gpus: int = 0
    share: ShareSpec | None = None
    cpu_millis: int = 0
    memory_bytes: int = 0
    planned_node: str | None = None
    # Set when the pod itself cannot be placed anywhere (contradictory or malformed GPU request);
    # the text is shown to the user in the pod's FailedScheduling event.
    invalid_reason: str | None = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class DeviceView:
    index: int
    whole: bool = False                # given whole to one pod (never shared)
    shared_memory_bytes: int = 0       # sum of the memory caps of the shares on it
    shared_min_utilization: int = 0    # sum of their guaranteed utilizations
    shares: int = 0

    @property
    def idle(self) -> bool:
        return not self.whole and self.shares == 0


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node's capacity and what is booked on it, at one instant."""

    name: str
    gpu_count: int
    gpu_memory_bytes: int                # per device
    cpu_millis: int                      # allocatable
    memory_bytes: int                    # allocatable
    cpu_requested: int = 0
    memory_requested: int = 0
    devices: tuple[DeviceView, ...] = ()
    # GPUs held by pods whose device ids are unknown (bound without stretto.io/gpu-ids); they are
    # subtracted from the idle devices without knowing which ones they are.
    anonymous_gpus: int = 0
    idle_ids: tuple[int, ...] = field(default=(), compare=False)
    # Devices in use, in device units: whole ones, anonymous ones and fractions of shared ones.
    # Computed once by `cluster_cache.build_view`, because scoring reads it for every node.
    gpus_in_use: float = field(default=0.0, compare=False)
    # Equal for views equal in everything a decision reads but the name (`shape`), so filter and
    # its scoring decide once per shape, not once per node: a big cluster has few shapes. -1: unknown.
    shape_id: int = field(default=-1, compare=False)

    @property
    def shape(self) -> tuple[object, ...]:
        return (self.gpu_count, self.gpu_memory_bytes, self.cpu_millis, self.memory_bytes, self.cpu_requested,
                self.memory_requested, self.devices, self.anonymous_gpus)

    @property
    def free_whole_gpus(self) -> int:
        return max(0, len(self.idle_ids) - self.anonymous_gpus)

    def share_fraction(self, device: DeviceView) -> float:
        """How much of a shared device is spoken for, 0..1, by memory or by guaranteed utilization."""
        if device.whole:
            return 1.0
        memory = device.shared_memory_bytes / self.gpu_memory_bytes if self.gpu_memory_bytes else 1.0
        return min(1.0, max(memory, device.shared_min_utilization / FULL_UTILIZATION))


class BookingState(StrEnum):
    RESERVED = "reserved"    # booked by a bind in flight
    BOUND = "bound"          # our Binding was accepted; the watch has not shown it yet
    UNCERTAIN = "uncertain"  # the Binding's outcome is unknown (timeout); held until the watch decides
    OBSERVED = "observed"    # seen bound in the API (watch or list)


@dataclass(frozen=True, slots=True)
class Booking:
    """Resources one pod holds (or is about to hold) on one node."""

    uid: str
    node: str
    gpu_ids: tuple[int, ...] = ()     # whole devices, or the one device a share lives on
    share: ShareSpec | None = None
    cpu_millis: int = 0
    memory_bytes: int = 0
    anonymous_gpus: int = 0
    state: BookingState = BookingState.OBSERVED
    since: float = 0.0                # monotonic time of the last state change
