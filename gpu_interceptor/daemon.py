"""The node daemon's loop: measure, decide, write the control files.

Fed by a share source (kube_watch.py for Kubernetes, or a shares file) through
``set_containers``; every tick (default 100 ms) it reads each container's ledger and NVML's
per-process utilization, asks the controller (controller.py) for caps and rates, and rewrites
the control files that changed (and all of them at least once per heartbeat, so the shims can
tell a live daemon from a dead one). No Kubernetes imports: the watch is a separate thin layer.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from . import control_file as cf
from . import controller as ctl
from . import pids as pids_mod
from .shares import ContainerShare

log = logging.getLogger("stretto.gpu_interceptor.daemon")


class GpuBackend(Protocol):
    """What the daemon needs from NVML (nvml_backend.NvmlBackend implements it)."""

    @property
    def device_count(self) -> int: ...
    def device(self, index: int) -> object: ...
    def process_utilization(self, index: int) -> dict[int, float]: ...


class DaemonArgs(BaseModel):
    """Node daemon settings (CLI flags map onto these)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    interval_s: float = Field(0.1, gt=0, le=10, description="controller period, seconds")
    heartbeat_s: float = Field(1.0, gt=0, le=60, description="rewrite every control file at least this often, s")
    stale_after_ms: int = Field(30_000, ge=0, description="heartbeat age (ms) after which shims fall back to min")
    burst_ms: int = Field(50, ge=1, le=10_000, description="token bucket depth, ms of the rate")
    rate_change: float = Field(0.02, ge=0, le=1, description="relative rate change that triggers a rewrite")
    controller: ctl.ControllerArgs = Field(default_factory=ctl.ControllerArgs)


@dataclass(slots=True)
class _Container:
    share: ContainerShare
    state: ctl.ContainerState | None = None
    generation: int = 0
    written_at: float = 0.0
    written_rate: float = 0.0
    written_cap: float = -1.0
    last_time: float | None = None
    last_consumed: int = 0
    last_throttled: int = 0
    util_pct: float = 0.0
    ledger: cf.LedgerSnapshot = field(default_factory=cf.LedgerSnapshot.empty)


@dataclass(frozen=True, slots=True)
class ContainerReport:
    share: ContainerShare
    util_pct: float
    cap_pct: float
    rate: float
    memory_used: int
    throttled_seconds: float
    oom_events: int
    launches: int


@dataclass(frozen=True, slots=True)
class DaemonReport:
    """What the metrics endpoint shows; replaced wholesale every tick."""

    gpus: tuple[object, ...] = ()
    containers: tuple[ContainerReport, ...] = ()
    last_tick_monotonic: float = 0.0


class NodeDaemon:
    def __init__(self, *, control_root: Path, backend: GpuBackend, args: DaemonArgs | None = None,
                 resolve_pids: pids_mod.PidResolverFn = pids_mod.resolve_by_ledger,
                 clock: Callable[[], float] = time.monotonic, wall_ns: Callable[[], int] = time.time_ns) -> None:
        self.control_root = control_root
        self.backend = backend
        self.args = args or DaemonArgs()
        self._resolve_pids = resolve_pids
        self._clock = clock
        self._wall_ns = wall_ns
        self._lock = threading.Lock()
        self._containers: dict[str, _Container] = {}
        self.report = DaemonReport()

    # ---- share source side ---------------------------------------------------------------

    def set_containers(self, shares: Iterable[ContainerShare]) -> None:
        """Replace the node's set of shared-GPU containers (the full set, not a delta)."""
        wanted = {s.key: s for s in shares}
        with self._lock:
            for key in list(self._containers):
                if key not in wanted:
                    self._remove(self._containers.pop(key).share)
            for key, share in wanted.items():
                rec = self._containers.get(key)
                if rec is None:
                    rec = self._adopt(share)
                    self._containers[key] = rec
                    self._write(rec, force=True)
                elif rec.share != share:
                    rec.share = share
                    self._write(rec, force=True)

    def _adopt(self, share: ContainerShare) -> _Container:
        """Start managing a container; resume from its control file if a previous daemon wrote one."""
        rec = _Container(share=share)
        cf.create_ledger(cf.ledger_path(self.control_root, share.pod_uid, share.container))
        path = cf.control_path(self.control_root, share.pod_uid, share.container)
        with contextlib.suppress(OSError, cf.ControlFileError):
            old = cf.read_control_file(path)
            rec.generation = old.generation
            if old.rate_tokens_per_s:
                rec.state = ctl.ContainerState(rate=float(old.rate_tokens_per_s), cap_pct=old.util_cap_bp / 100)
        if rec.state is None:
            cap = share.max_pct
            rec.state = ctl.ContainerState(rate=ctl.initial_rate(cap, self.args.controller), cap_pct=cap)
        return rec

    def _remove(self, share: ContainerShare) -> None:
        directory = cf.container_dir(self.control_root, share.pod_uid, share.container)
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the pod's directory, once its last container is gone

    # ---- the loop --------------------------------------------------------------------------

    def tick(self) -> None:
        """Measure every container, run the controller, write what changed."""
        with self._lock:
            now = self._clock()
            containers = dict(self._containers)
            # 1. What the shims report: tokens, throttled time, memory, their pids.
            for rec in containers.values():
                s = rec.share
                rec.ledger = cf.read_ledger(cf.ledger_path(self.control_root, s.pod_uid, s.container))
            # 2. What NVML measured per process since the last tick, attributed to containers.
            gpus_in_use = sorted({g for rec in containers.values() for g in rec.share.gpu_ids})
            util_by_gpu = {g: self.backend.process_utilization(g) for g in gpus_in_use
                           if g < self.backend.device_count}
            all_pids = {pid for per_pid in util_by_gpu.values() for pid in per_pid}
            owner = self._resolve_pids(all_pids, {k: r.share for k, r in containers.items()},
                                       {k: r.ledger.pids for k, r in containers.items()})
            # 3. One observation per container over the same interval.
            observations: dict[str, ctl.Observation | None] = {}
            for key, rec in containers.items():
                per_gpu = [sum(u for pid, u in util_by_gpu.get(g, {}).items() if owner.get(pid) == key)
                           for g in rec.share.gpu_ids]
                rec.util_pct = max(per_gpu, default=0.0)
                observations[key] = self._observe(rec, now)
            # 4. Decide and write.
            decisions = ctl.step(
                {k: ctl.ShareSpec(r.share.min_pct, r.share.max_pct) for k, r in containers.items()},
                {k: r.share.gpu_ids for k, r in containers.items()},
                observations,
                {k: r.state for k, r in containers.items() if r.state is not None},
                self.args.controller,
            )
            for key, rec in containers.items():
                d = decisions[key]
                rec.state = ctl.ContainerState(rate=d.rate, cap_pct=d.cap_pct)
                self._write(rec, fallback=d.fallback_rate)
            self.report = self._build_report(containers, now)

    def _observe(self, rec: _Container, now: float) -> ctl.Observation | None:
        led = rec.ledger
        prev_time = rec.last_time
        consumed, throttled = led.consumed_tokens, led.throttled_ns
        obs = None
        if prev_time is not None and now > prev_time and consumed >= rec.last_consumed:
            dt = now - prev_time
            obs = ctl.Observation(
                util_pct=rec.util_pct,
                tokens_per_s=(consumed - rec.last_consumed) / dt,
                throttled_fraction=min(1.0, max(0, throttled - rec.last_throttled) / 1e9 / dt),
            )
        rec.last_time, rec.last_consumed, rec.last_throttled = now, consumed, throttled
        return obs

    def _write(self, rec: _Container, *, force: bool = False, fallback: float | None = None) -> None:
        assert rec.state is not None
        now = self._clock()
        rate, cap = rec.state.rate, rec.state.cap_pct
        changed = (
            abs(rate - rec.written_rate) > self.args.rate_change * max(rec.written_rate, 1.0)
            or abs(cap - rec.written_cap) >= 0.5
        )
        if not (force or changed or now - rec.written_at >= self.args.heartbeat_s):
            return
        s = rec.share
        if fallback is None:
            fallback = ctl.fallback_rate(rate, cap, ctl.ShareSpec(s.min_pct, s.max_pct))
        rec.generation += 1
        block = cf.ControlBlock(
            generation=rec.generation, written_unix_ns=self._wall_ns(), stale_after_ms=self.args.stale_after_ms,
            memory_limit_bytes=s.memory_bytes, util_min_bp=round(s.min_pct * 100), util_max_bp=round(s.max_pct * 100),
            util_cap_bp=min(cf.BP_FULL, round(cap * 100)), burst_ms=self.args.burst_ms,
            rate_tokens_per_s=max(1, round(rate)), fallback_rate_tokens_per_s=round(fallback),
            device_count=len(s.gpu_ids),
        )
        try:
            cf.write_control_file(cf.control_path(self.control_root, s.pod_uid, s.container), block)
        except OSError as e:
            log.warning("cannot write the control file of %s: %s", s.key, e)
            return
        rec.written_at, rec.written_rate, rec.written_cap = now, rate, cap

    def _build_report(self, containers: dict[str, _Container], now: float) -> DaemonReport:
        gpus = []
        for i in range(self.backend.device_count):
            try:
                gpus.append(self.backend.device(i))
            except Exception as e:  # a lost GPU must not stop the controller
                log.warning("cannot read GPU %d: %s", i, e)
        reports = []
        for rec in containers.values():
            n = max(1, len(rec.share.gpu_ids))
            reports.append(ContainerReport(
                share=rec.share, util_pct=rec.util_pct, cap_pct=rec.state.cap_pct if rec.state else 0.0,
                rate=rec.state.rate if rec.state else 0.0, memory_used=sum(rec.ledger.mem_used[:n]),
                throttled_seconds=rec.ledger.throttled_ns / 1e9, oom_events=rec.ledger.oom_events,
                launches=rec.ledger.launches,
            ))
        return DaemonReport(gpus=tuple(gpus), containers=tuple(reports), last_tick_monotonic=now)

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and retried next period."""
        period = self.args.interval_s
        next_at = self._clock()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("controller tick failed")
            next_at += period
            delay = next_at - self._clock()
            if delay < 0:
                next_at = self._clock()
                delay = 0
            stop.wait(delay)
