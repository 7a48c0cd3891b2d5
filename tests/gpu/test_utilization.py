"""Utilization on the mock GPU: caps, min/max arbitration, bursting, and the fail-safes.

One scenario, run concurrently on six simulated GPUs to keep the suite short (the simulated
timeline is virtual busy time, so the windows do not depend on the host CPU being idle):

  GPU 0, 1, 2  caps 30 / 50 / 70 % (daemon 1), windows [3 s, 13 s] and, after daemon 1 is
               SIGKILLed at 13.5 s, [15 s, 25 s]: the caps hold without the daemon.
  GPU 3        min 20 / max 60 alone (daemon 1): 60 % while the daemon lives; 3 s after its
               death the shim falls back to the guaranteed 20 %, never to unlimited.
  GPU 4        A min 60 / max 100 and B min 20 / max 100 (daemon 2): both at least their minimum
               under contention in [3 s, 12 s]; B goes idle at 12 s, A reaches >= 90 % in [15 s, 25 s].
  GPU 5        standalone: STRETTO_GPU_UTILIZATION_LIMIT=50, no daemon, window [3 s, 13 s].
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from gpu_support import PYTHON, TESTS_BIN, FakeGpus, make_fake_gpus

from stretto.gpu_interceptor import control_file as cf

SECONDS = 26
KILL_AT = 13.5
WORKLOAD = ["--grid", "32", "--block-us", "50", "--batch", "8"]


def start_daemon(gpus: FakeGpus, root: Path, containers: list[dict], stale_after: float) -> subprocess.Popen:
    shares = root / "shares.json"
    shares.parent.mkdir(parents=True, exist_ok=True)
    shares.write_text(json.dumps({"containers": containers}))
    cmd = [PYTHON, "-m", "stretto.gpu_interceptor", "node-daemon", "--control-dir", str(root / "ctl"),
           "--shares-file", str(shares), "--metrics-port", "0", "--stale-after", str(stale_after),
           "--initial-tokens-per-percent", "150"]
    proc = subprocess.Popen(cmd, env=gpus.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for c in containers:
        path = cf.control_path(root / "ctl", c["pod_uid"], c["container"])
        deadline = time.monotonic() + 15
        while not path.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, f"daemon wrote no {path}"
            time.sleep(0.05)
    return proc


def container_env(gpus: FakeGpus, root: Path, uid: str) -> dict[str, str]:
    return gpus.shim_env(STRETTO_CONTROL_FILE=str(cf.control_path(root / "ctl", uid, "w")),
                         STRETTO_LEDGER_FILE=str(cf.ledger_path(root / "ctl", uid, "w")))


def start_workload(env: dict[str, str], device: int, *extra: str) -> subprocess.Popen:
    proc = subprocess.Popen([str(TESTS_BIN / "workload"), "--device", str(device), "--seconds", str(SECONDS),
                             *WORKLOAD, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "started", f"workload failed to start: {line} {proc.stderr.read() if proc.stderr else ''}"
    return proc


def share(uid: str, gpu: int, lo: float, hi: float) -> dict:
    return {"pod_uid": uid, "container": "w", "gpu_ids": [gpu], "memory": "1Gi", "min_utilization": lo,
            "max_utilization": hi}


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("util")
    gpus = make_fake_gpus(tmp / "gpus", [(f"Stretto Fake GPU {i}", "16Gi") for i in range(6)])
    d1_root, d2_root = tmp / "daemon1", tmp / "daemon2"
    d1 = start_daemon(gpus, d1_root, [share("c30", 0, 0, 30), share("c50", 1, 0, 50), share("c70", 2, 0, 70),
                                      share("fb", 3, 20, 60)], stale_after=3)
    d2 = start_daemon(gpus, d2_root, [share("a", 4, 60, 100), share("b", 4, 20, 100)], stale_after=30)
    procs: dict[str, subprocess.Popen] = {}
    try:
        t0 = time.monotonic_ns()
        procs["c30"] = start_workload(container_env(gpus, d1_root, "c30"), 0)
        procs["c50"] = start_workload(container_env(gpus, d1_root, "c50"), 1)
        procs["c70"] = start_workload(container_env(gpus, d1_root, "c70"), 2)
        procs["fb"] = start_workload(container_env(gpus, d1_root, "fb"), 3)
        procs["a"] = start_workload(container_env(gpus, d2_root, "a"), 4)
        procs["b"] = start_workload(container_env(gpus, d2_root, "b"), 4, "--busy-until", "12")
        standalone = tmp / "standalone.ledger"
        procs["sa"] = start_workload(gpus.shim_env(STRETTO_GPU_UTILIZATION_LIMIT="50",
                                                   STRETTO_LEDGER_FILE=str(standalone)), 5)
        time.sleep(max(0.0, KILL_AT - (time.monotonic_ns() - t0) / 1e9))
        os.kill(d1.pid, signal.SIGKILL)
        d1.wait()
        killed_at = (time.monotonic_ns() - t0) / 1e9
        for p in procs.values():
            _out, err = p.communicate(timeout=SECONDS + 30)
            assert p.returncode == 0, err
        pids = {k: p.pid for k, p in procs.items()}
    finally:
        for p in [*procs.values(), d1, d2]:
            if p.poll() is None:
                p.kill()
                p.wait()

    def window(gpu: int, start: float, end: float, who: str | None = None) -> float:
        pid = pids[who] if who else 0
        return 100 * gpus.busy([(gpu, pid, t0 + int(start * 1e9), t0 + int(end * 1e9))])[0]

    return {"window": window, "killed_at": killed_at}


@pytest.mark.parametrize(("gpu", "cap"), [(0, 30), (1, 50), (2, 70)])
def test_caps_hold_within_5_points_over_10s_after_3s(scenario, gpu, cap):
    util = scenario["window"](gpu, 3, 13)
    print(f"cap {cap}: {util:.1f} % in [3 s, 13 s]")
    assert abs(util - cap) <= 5, f"cap {cap}: {util:.1f} % in [3 s, 13 s]"


@pytest.mark.parametrize(("gpu", "cap"), [(0, 30), (1, 50), (2, 70)])
def test_caps_hold_after_the_daemon_is_sigkilled(scenario, gpu, cap):
    assert scenario["killed_at"] < 15
    util = scenario["window"](gpu, 15, 25)
    print(f"cap {cap} after SIGKILL of the daemon: {util:.1f} % in [15 s, 25 s]")
    assert abs(util - cap) <= 5, f"cap {cap} without the daemon: {util:.1f} % in [15 s, 25 s]"


def test_stale_daemon_falls_back_to_the_guaranteed_minimum_never_unlimited(scenario):
    live = scenario["window"](3, 3, 13)
    assert abs(live - 60) <= 5, f"max 60 alone: {live:.1f} %"
    fallback = scenario["window"](3, 19, 25)  # killed at 13.5 s, stale after 3 s, settled by 19 s
    print(f"min 20 / max 60: {live:.1f} % with the daemon, {fallback:.1f} % after it died")
    assert abs(fallback - 20) <= 5, f"fallback to min 20: {fallback:.1f} %"


def test_each_container_gets_its_minimum_under_contention(scenario):
    a = scenario["window"](4, 3, 12, "a")
    b = scenario["window"](4, 3, 12, "b")
    print(f"contention: A (min 60) {a:.1f} %, B (min 20) {b:.1f} % in [3 s, 12 s]")
    assert a >= 60 - 2 and b >= 20 - 2, f"A {a:.1f} %, B {b:.1f} %"
    assert a + b <= 100.5


def test_a_container_bursts_to_90_percent_when_its_neighbour_is_idle(scenario):
    a = scenario["window"](4, 15, 25, "a")
    print(f"A alone after B went idle: {a:.1f} % in [15 s, 25 s]")
    assert a >= 90, f"A alone: {a:.1f} %"
    assert scenario["window"](4, 15, 25, "b") == 0


def test_standalone_limit_without_a_daemon(scenario):
    util = scenario["window"](5, 3, 13)
    print(f"standalone cap 50: {util:.1f} % in [3 s, 13 s]")
    assert abs(util - 50) <= 5, f"standalone cap 50: {util:.1f} %"
