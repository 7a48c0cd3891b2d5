"""The extender's two verbs over parsed wire models: filter with `decisions` over a cache snapshot,
answering only the best-fitting nodes, and at bind time book devices in the cache before the binder writes
to the API.

Filter scores as well as filters: it answers the nodes of the best multi-resource fit, so kube-scheduler
needs no prioritize call (a second request and answer of every candidate node per pod), and its own
scores (affinity, spreading) choose among nodes that pack equally well.

Every expected failure becomes an answer (a reason per node, or an Error string); exceptions here
are bugs, and `server` still turns them into an Error answer rather than a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from stretto import contracts

from . import decisions
from .binder import BindError, PodBinder
from .cluster_cache import ClusterCache, ReservationError
from .demand import MalformedPod, pod_demand
from .metrics import BindFailure, ExtenderMetrics
from .model import BookingState, PodDemand
from .pending_pods import PendingPods
from .wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    NodeList,
)

log = logging.getLogger(__name__)

NOT_READY = "stretto extender: node and pod cache not synced yet"
IN_FLIGHT_WAIT_S = 4.0  # a retried bind waits this long for the first; kube-scheduler's httpTimeout is 10 s
_BOUND_STATES = (BookingState.BOUND, BookingState.OBSERVED)


def _always_ready() -> bool:
    return True


class Extender:
    def __init__(
        self, *, cache: ClusterCache, binder: PodBinder, metrics: ExtenderMetrics | None = None,
        ready: Callable[[], bool] = _always_ready,
        pods_on_node: Callable[[str], set[str]] | None = None,
        pending: PendingPods | None = None,
    ) -> None:
        """`pods_on_node(node)` lists the UIDs of the pods the API shows on a node (for `_confirm`);
        `pending` is the watch's copy of the pods waiting to be bound (bind reads the pod otherwise)."""
        self._cache = cache
        self._pods_on_node = pods_on_node
        self._binder = binder
        self._metrics = metrics if metrics is not None else ExtenderMetrics()
        self._ready = ready
        self._pending = pending if pending is not None else PendingPods()
        self._in_flight = _BindsInFlight()

    # ---- filter --------------------------------------------------------------------------------
    def filter(self, args: ExtenderArgs) -> ExtenderFilterResult:
        if not self._ready():
            return ExtenderFilterResult(Error=NOT_READY)
        try:
            names = args.candidate_names()
            demand = pod_demand(args.Pod)
        except ValueError as exc:
            return ExtenderFilterResult(Error=f"stretto extender: malformed request: {exc}")
        if args.NodeNames is not None and self._plan_fits(demand, names):
            # The round's planned node takes the pod: the answer is that node alone. Every other node is
            # out for one reason that nobody will read (the pod schedules), so none is listed.
            self._metrics.filtered_out.labels("unresolvable").inc(len(names) - 1)
            return ExtenderFilterResult(NodeNames=[demand.planned_node])  # type: ignore[list-item]
        views = self._cache.snapshot()
        outcome = decisions.filter_nodes(demand, names, views)
        if demand.planned_node in outcome.failed and self._confirm(demand.planned_node):
            views = self._cache.snapshot()
            outcome = decisions.filter_nodes(demand, names, views)
        passed = decisions.best_fit(demand, outcome.passed, views)
        self._metrics.filtered_out.labels("worse-fit").inc(len(outcome.passed) - len(passed))
        self._metrics.filtered_out.labels("failed").inc(len(outcome.failed))
        self._metrics.filtered_out.labels("unresolvable").inc(len(outcome.unresolvable))
        if args.NodeNames is None and args.Nodes is not None:
            kept = set(passed)
            nodes = NodeList(items=[n for n in args.Nodes.items if n["metadata"]["name"] in kept])
            return ExtenderFilterResult(
                Nodes=nodes, FailedNodes=outcome.failed, FailedAndUnresolvableNodes=outcome.unresolvable,
            )
        return ExtenderFilterResult(
            NodeNames=passed, FailedNodes=outcome.failed,
            FailedAndUnresolvableNodes=outcome.unresolvable,
        )

    def _plan_fits(self, demand: PodDemand, names: list[str]) -> bool:
        if demand.planned_node is None or demand.planned_node not in names:
            return False
        try:
            decisions.check_node(demand, self._cache.view(demand.planned_node))
        except decisions.NoFit:
            return False
        return True

    def _confirm(self, node: str) -> bool:
        """The planned node looked full: check its bookings against the API (the watch may lag the
        scheduler, which would then not retry the pod for minutes). True if any booking was stale."""
        if self._pods_on_node is None:
            return False
        listed_at = self._cache.now()
        try:
            present = self._pods_on_node(node)
        except Exception as exc:  # the API busy: answer from the cache, the scheduler retries
            log.warning("cannot list the pods on %s to confirm its bookings: %s", node, exc)
            return False
        dropped = self._cache.confirm_node(node, present, listed_at=listed_at)
        if dropped:
            log.info("%s: %d booking(s) of deleted pods dropped ahead of the watch", node, dropped)
        return dropped > 0

    # ---- bind ----------------------------------------------------------------------------------
    def bind(self, args: ExtenderBindingArgs) -> ExtenderBindingResult:
        """Bind once per pod: a retry of a bind that took effect succeeds again, and a retry that
        arrives while the first is under way (kube-scheduler's, after its timeout) waits for it."""
        if not self._ready():
            return self._bind_failed(BindFailure.NOT_READY, NOT_READY)
        for _ in range(2):
            current = self._cache.booking(args.PodUID)
            if current is not None and current.node == args.Node and current.state in _BOUND_STATES:
                return ExtenderBindingResult()
            under_way = self._in_flight.begin(args.PodUID)
            if under_way is None:
                try:
                    return self._bind(args)
                finally:
                    self._in_flight.end(args.PodUID)
            under_way.wait(IN_FLIGHT_WAIT_S)
        return self._bind_failed(BindFailure.IN_FLIGHT, f"stretto extender: a bind of pod {args.PodNamespace}/"
                                 f"{args.PodName} is still under way; retry")

    def _bind(self, args: ExtenderBindingArgs) -> ExtenderBindingResult:
        """1. know the pod's demand, 2. check the plan, 3. book devices, 4. post the Binding with the
        devices' annotations, 5. confirm the booking, or roll it back on failure."""
        namespace, name, uid, node = args.PodNamespace, args.PodName, args.PodUID, args.Node
        # 1. The pod's demand, as the API server holds it: the watch's copy, else read it back.
        demand = self._pending.get(uid)
        if demand is None or (demand.namespace, demand.name) != (namespace, name):
            try:
                demand = pod_demand(self._binder.read_pod(namespace, name))
            except BindError as exc:
                return self._bind_failed(BindFailure.API, f"stretto extender: {exc}")
            except MalformedPod as exc:
                return self._bind_failed(BindFailure.MALFORMED, f"stretto extender: pod unreadable: {exc}")
            if demand.uid != uid:
                return self._bind_failed(
                    BindFailure.MALFORMED,
                    f"stretto extender: pod {namespace}/{name} has uid {demand.uid}, not {uid}",
                )
        # 2. The round's plan.
        if demand.planned_node is not None and demand.planned_node != node:
            return self._bind_failed(
                BindFailure.PLAN,
                f"stretto: this round planned pod {demand.key} for node {demand.planned_node}, not {node}",
            )
        # 3. Book the devices, atomically with picking them.
        try:
            booking = self._cache.reserve(demand, node)
        except ReservationError as exc:
            return self._bind_failed(BindFailure.NO_FIT, str(exc))
        # 4. The Binding, carrying the devices: the node never sees the pod without them.
        annotations = self._annotations(demand, booking.gpu_ids)
        try:
            self._binder.bind_pod(namespace, name, uid, node, annotations)
        except BindError as exc:
            return self._resolve_failed_binding(demand, node, exc)
        # 5. Booked until the watch shows the pod bound (or deleted).
        self._cache.mark(uid, BookingState.BOUND)
        self._pending.forget(uid)
        self._metrics.binds.labels(self._gpu_mode(demand)).inc()
        log.info("bound %s to %s, GPUs %s", demand.key, node,
                 annotations.get(contracts.ANNOTATION_GPU_IDS, "-"))
        return ExtenderBindingResult()

    def _resolve_failed_binding(self, demand: PodDemand, node: str, exc: BindError) -> ExtenderBindingResult:
        """A refused Binding frees the booking. One whose outcome is unknown (timeout, 5xx) is
        resolved by reading the pod; if that fails too, the devices stay booked (UNCERTAIN) until
        the watch tells, because freeing devices a running pod may hold is the one unforgivable error."""
        if exc.definite:
            self._cache.release(demand.uid)
            return self._bind_failed(BindFailure.API, f"stretto extender: {exc}")
        try:
            pod = self._binder.read_pod(demand.namespace, demand.name)
        except BindError:
            self._cache.mark(demand.uid, BookingState.UNCERTAIN)
            return self._bind_failed(BindFailure.UNCERTAIN, f"stretto extender: {exc} (outcome unknown)")
        meta = pod.get("metadata") or {}
        bound_to = (pod.get("spec") or {}).get("nodeName")
        if meta.get("uid") == demand.uid and bound_to == node:
            self._cache.mark(demand.uid, BookingState.BOUND)
            self._metrics.binds.labels(self._gpu_mode(demand)).inc()
            return ExtenderBindingResult()
        if meta.get("uid") == demand.uid and not bound_to:
            self._cache.release(demand.uid)
        else:
            self._cache.mark(demand.uid, BookingState.UNCERTAIN)
        return self._bind_failed(BindFailure.API, f"stretto extender: {exc}")

    @staticmethod
    def _annotations(demand: PodDemand, gpu_ids: tuple[int, ...]) -> dict[str, str]:
        if demand.share is not None:
            return {
                contracts.ANNOTATION_GPU_IDS: contracts.format_gpu_ids(list(gpu_ids)),
                contracts.ANNOTATION_GPU_MEMORY: str(demand.share.memory_bytes),
                contracts.ANNOTATION_GPU_MIN_UTIL: str(demand.share.min_utilization),
                contracts.ANNOTATION_GPU_MAX_UTIL: str(demand.share.max_utilization),
            }
        if gpu_ids:
            return {contracts.ANNOTATION_GPU_IDS: contracts.format_gpu_ids(list(gpu_ids))}
        return {}

    @staticmethod
    def _gpu_mode(demand: PodDemand) -> str:
        return "shared" if demand.share is not None else "whole" if demand.whole_gpus else "none"

    def _bind_failed(self, reason: BindFailure, message: str) -> ExtenderBindingResult:
        self._metrics.bind_failures.labels(reason.value).inc()
        log.warning("bind refused (%s): %s", reason.value, message)
        return ExtenderBindingResult(Error=message)


class _BindsInFlight:
    """The binds under way, by pod uid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def begin(self, uid: str) -> threading.Event | None:
        """None: the caller now owns the pod's bind (and must `end` it); else the bind under way's Event."""
        with self._lock:
            if uid in self._events:
                return self._events[uid]
            self._events[uid] = threading.Event()
            return None

    def end(self, uid: str) -> None:
        with self._lock:
            event = self._events.pop(uid, None)
        if event is not None:
            event.set()
