"""Prometheus metrics of the extender. One registry per instance, so tests and benches can build
as many extenders as they like."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Filter over 1,000 cached nodes takes about a millisecond; binds take API round trips.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Verb(StrEnum):
    FILTER = "filter"
    BIND = "bind"


class BindFailure(StrEnum):
    MALFORMED = "malformed"        # the request or the pod could not be read
    NOT_READY = "not_ready"        # the cache has not synced yet
    PLAN = "plan_mismatch"         # the node is not the round's planned node
    NO_FIT = "no_fit"              # no devices left for the pod on that node
    API = "api_error"              # posting the Binding (or reading the pod) failed
    UNCERTAIN = "uncertain"        # the Binding's outcome is unknown; devices stay booked
    IN_FLIGHT = "in_flight"        # another bind of the same pod was still under way


class ExtenderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "stretto_extender_requests", "Extender requests by verb and result (ok or error).",
            ["verb", "result"], registry=self.registry,
        )
        self.latency = Histogram(
            "stretto_extender_request_duration_seconds", "Time to answer an extender request.",
            ["verb"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.binds = Counter(
            "stretto_extender_binds", "Pods bound by the extender.", ["gpu_mode"], registry=self.registry,
        )
        self.bind_failures = Counter(
            "stretto_extender_bind_failures", "Binds that failed, by reason.", ["reason"],
            registry=self.registry,
        )
        self.filtered_out = Counter(
            "stretto_extender_filtered_nodes",
            "Nodes filter left out, by kind: failed, unresolvable, worse-fit (fits, packs worse than those answered).",
            ["kind"], registry=self.registry,
        )
        self._cache_nodes = Gauge(
            "stretto_extender_cache_nodes", "Nodes in the extender's cache.", registry=self.registry,
        )
        self._gpus_in_use = Gauge(
            "stretto_extender_gpus_in_use", "GPUs booked in the cache (shared ones count fractionally).",
            registry=self.registry,
        )
        for verb in Verb:
            for result in ("ok", "error"):
                self.requests.labels(verb.value, result)
        for reason in BindFailure:
            self.bind_failures.labels(reason.value)

    def watch_cache(self, *, nodes: Callable[[], float], gpus_in_use: Callable[[], float]) -> None:
        self._cache_nodes.set_function(nodes)
        self._gpus_in_use.set_function(gpus_in_use)
