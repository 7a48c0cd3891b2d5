"""The extender's node and GPU-device cache, and the booking ledger on top of it.

Fed by `watch` (nodes; pods bound in the API) and by `extender` (bookings it makes at bind time,
recorded at once so a second bind cannot reuse a device before the watch catches up). One lock
guards everything; every change rebuilds the affected node's frozen `NodeView`, so readers take
a snapshot by copying a dict of references.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from stretto import contracts
from stretto.api.quantity import to_millis, to_units

from . import decisions
from .model import (
    DEFAULT_GPU_MEMORY_MIB,
    MIB,
    Booking,
    BookingState,
    DeviceView,
    NodeView,
    PodDemand,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeCapacity:
    name: str
    gpu_count: int
    gpu_memory_bytes: int
    cpu_millis: int
    memory_bytes: int


def node_capacity(node: Any) -> NodeCapacity | None:
    """Allocatable GPUs, CPU and memory of a Node object; None if it is not a usable Node."""
    try:
        meta = node.get("metadata") or {}
        name = meta["name"]
        labels = meta.get("labels") or {}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        if not isinstance(name, str) or not name:
            return None
        memory_mib = labels.get(contracts.GPU_MEMORY_LABEL)
        gpu_memory = int(memory_mib) * MIB if memory_mib else DEFAULT_GPU_MEMORY_MIB * MIB
        return NodeCapacity(
            name=name,
            gpu_count=to_units(allocatable.get(contracts.GPU_RESOURCE, 0)),
            gpu_memory_bytes=gpu_memory,
            cpu_millis=to_millis(allocatable.get("cpu", 0)),
            memory_bytes=to_units(allocatable.get("memory", 0)),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        log.warning("ignoring a Node object the cache cannot read", exc_info=True)
        return None


class ReservationError(Exception):
    """A booking was refused; str(exc) is the reason for the bind's Error."""


class ShapeIds:
    """Numbers node shapes: equal shapes get one id, and an id is never reused (not thread-safe:
    the cache calls it under its lock)."""

    LIMIT = 65536  # distinct shapes remembered; past it the table starts afresh with new ids

    def __init__(self) -> None:
        self._ids: dict[tuple[object, ...], int] = {}
        self._next = 0

    def __call__(self, shape: tuple[object, ...]) -> int:
        found = self._ids.get(shape)
        if found is None:
            if len(self._ids) >= self.LIMIT:
                self._ids.clear()
            found = self._ids[shape] = self._next
            self._next += 1
        return found


def build_view(capacity: NodeCapacity, bookings: Iterable[Booking], shape_ids: ShapeIds | None = None) -> NodeView:
    whole = [False] * capacity.gpu_count
    memory = [0] * capacity.gpu_count
    min_util = [0] * capacity.gpu_count
    shares = [0] * capacity.gpu_count
    cpu = mem = anonymous = 0
    for booking in bookings:
        cpu += booking.cpu_millis
        mem += booking.memory_bytes
        anonymous += booking.anonymous_gpus
        for index in booking.gpu_ids:
            if index >= capacity.gpu_count:
                continue  # a device the node no longer reports
            if booking.share is None:
                whole[index] = True
            else:
                memory[index] += booking.share.memory_bytes
                min_util[index] += booking.share.min_utilization
                shares[index] += 1
    devices = tuple(
        DeviceView(index=i, whole=whole[i], shared_memory_bytes=memory[i],
                   shared_min_utilization=min_util[i], shares=shares[i])
        for i in range(capacity.gpu_count)
    )
    view = NodeView(
        name=capacity.name, gpu_count=capacity.gpu_count, gpu_memory_bytes=capacity.gpu_memory_bytes,
        cpu_millis=capacity.cpu_millis, memory_bytes=capacity.memory_bytes,
        cpu_requested=cpu, memory_requested=mem, devices=devices, anonymous_gpus=anonymous,
        idle_ids=tuple(d.index for d in devices if d.idle),
    )
    in_use = anonymous + sum(view.share_fraction(d) for d in devices if not d.idle)
    return replace(view, gpus_in_use=in_use, shape_id=shape_ids(view.shape) if shape_ids is not None else -1)


class ClusterCache:
    """Thread-safe. `clock` is injectable for tests of the resync rules (monotonic seconds)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._nodes: dict[str, NodeCapacity] = {}
        self._bookings: dict[str, Booking] = {}          # by pod uid
        self._by_node: dict[str, dict[str, Booking]] = {}
        self._views: dict[str, NodeView] = {}
        self._shape_ids = ShapeIds()

    def now(self) -> float:
        return self._clock()

    # ---- reading -------------------------------------------------------------------------------
    def snapshot(self) -> Mapping[str, NodeView]:
        with self._lock:
            return dict(self._views)

    def view(self, node: str) -> NodeView | None:
        with self._lock:
            return self._views.get(node)

    def booking(self, uid: str) -> Booking | None:
        with self._lock:
            return self._bookings.get(uid)

    def bookings(self) -> list[Booking]:
        with self._lock:
            return list(self._bookings.values())

    def node_count(self) -> int:
        with self._lock:
            return len(self._nodes)

    def booked_gpus(self) -> float:
        with self._lock:
            return sum(v.gpus_in_use for v in self._views.values())

    # ---- nodes ---------------------------------------------------------------------------------
    def upsert_node(self, capacity: NodeCapacity) -> None:
        with self._lock:
            self._nodes[capacity.name] = capacity
            self._rebuild(capacity.name)

    def remove_node(self, name: str) -> None:
        """Forget the node; bookings on it stay, so they apply again if it comes back."""
        with self._lock:
            self._nodes.pop(name, None)
            self._views.pop(name, None)

    def replace_nodes(self, capacities: Iterable[NodeCapacity]) -> None:
        with self._lock:
            self._nodes = {c.name: c for c in capacities}
            self._views = {}
            for name in self._nodes:
                self._rebuild(name)

    # ---- pods seen in the API ------------------------------------------------------------------
    def observe_booking(self, booking: Booking) -> None:
        """A pod the API shows bound (and not finished). The API is the truth: it replaces ours."""
        with self._lock:
            self._put(replace(booking, state=BookingState.OBSERVED, since=self._clock()))

    def observe_unbound(self, uid: str) -> None:
        """A pod the API shows unbound, finished or deleted."""
        with self._lock:
            current = self._bookings.get(uid)
            # A bind in flight (RESERVED) or just accepted (BOUND) outruns the watch: an older event
            # showing the pod pending must not free its devices. Deletion is handled by forget_pod.
            if current is not None and current.state in (BookingState.OBSERVED, BookingState.UNCERTAIN):
                self._drop(uid)

    def forget_pod(self, uid: str) -> None:
        """The pod is gone (deleted) or finished: free whatever it held, whatever the state."""
        with self._lock:
            self._drop(uid)

    def replace_pods(self, bookings: Iterable[Booking], *, listed_at: float) -> None:
        """A full list (start, or resync after 410). Keeps our own bookings the list may predate."""
        with self._lock:
            fresh = {b.uid: replace(b, state=BookingState.OBSERVED, since=listed_at) for b in bookings}
            for uid, ours in self._bookings.items():
                if uid in fresh:
                    continue
                in_flight = ours.state in (BookingState.RESERVED, BookingState.UNCERTAIN)
                if in_flight or (ours.state is BookingState.BOUND and ours.since >= listed_at):
                    fresh[uid] = ours
            touched = set(self._by_node) | {b.node for b in fresh.values()}
            self._bookings = {}
            self._by_node = {}
            for booking in fresh.values():
                self._bookings[booking.uid] = booking
                self._by_node.setdefault(booking.node, {})[booking.uid] = booking
            for node in touched:
                self._rebuild(node)

    def confirm_node(self, node: str, present: set[str], *, listed_at: float) -> int:
        """Drop bookings on `node` of pods a fresh list no longer shows; returns how many.

        The watch can lag kube-scheduler's own: a pod deleted a moment ago still holds its devices
        here while the scheduler already counts them free. Bookings made after the list (or still in
        flight) stay.
        """
        with self._lock:
            stale = [uid for uid, b in self._by_node.get(node, {}).items() if uid not in present and (
                b.state is BookingState.OBSERVED or (b.state is BookingState.BOUND and b.since < listed_at))]
            for uid in stale:
                self._drop(uid)
            return len(stale)

    # ---- bookings the extender makes -----------------------------------------------------------
    def reserve(self, demand: PodDemand, node: str) -> Booking:
        """Pick devices for `demand` on `node` and book them, atomically. Raises ReservationError."""
        with self._lock:
            current = self._bookings.get(demand.uid)
            if current is not None:
                if current.state in (BookingState.RESERVED, BookingState.BOUND, BookingState.OBSERVED):
                    raise ReservationError(
                        f"stretto: pod {demand.key} already holds a booking on node {current.node}"
                    )
                self._drop(demand.uid)  # an earlier bind with an unknown outcome: the retry supersedes it
            view = self._views.get(node)
            try:
                ids = decisions.check_node(demand, view)
            except decisions.NoFit as no_fit:
                raise ReservationError(f"{no_fit.reason} (node {node})") from None
            booking = Booking(
                uid=demand.uid, node=node, gpu_ids=ids, share=demand.share,
                cpu_millis=demand.cpu_millis, memory_bytes=demand.memory_bytes,
                state=BookingState.RESERVED, since=self._clock(),
            )
            self._put(booking)
            return booking

    def mark(self, uid: str, state: BookingState) -> None:
        with self._lock:
            current = self._bookings.get(uid)
            if current is not None and current.state is not BookingState.OBSERVED:
                self._put(replace(current, state=state, since=self._clock()))

    def release(self, uid: str) -> None:
        """Roll back a booking this extender made (the bind failed). Observed bookings stay."""
        with self._lock:
            current = self._bookings.get(uid)
            if current is not None and current.state is not BookingState.OBSERVED:
                self._drop(uid)

    # ---- internals (lock held) -----------------------------------------------------------------
    def _put(self, booking: Booking) -> None:
        old = self._bookings.get(booking.uid)
        if old is not None and old.node != booking.node:
            self._by_node.get(old.node, {}).pop(booking.uid, None)
            self._rebuild(old.node)
        self._bookings[booking.uid] = booking
        self._by_node.setdefault(booking.node, {})[booking.uid] = booking
        self._rebuild(booking.node)

    def _drop(self, uid: str) -> None:
        old = self._bookings.pop(uid, None)
        if old is not None:
            on_node = self._by_node.get(old.node, {})
            on_node.pop(uid, None)
            if not on_node:
                self._by_node.pop(old.node, None)
            self._rebuild(old.node)

    def _rebuild(self, node: str) -> None:
        capacity = self._nodes.get(node)
        if capacity is not None:
            self._views[node] = build_view(capacity, self._by_node.get(node, {}).values(), self._shape_ids)
