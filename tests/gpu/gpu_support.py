"""Helpers shared by the GPU interceptor tests (paths, fake GPUs, process runners)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NATIVE = REPO / "gpu_interceptor" / "native"
BUILD = NATIVE / "build"
SHIM = BUILD / "libstretto-cuda.so"
FAKE = BUILD / "fake"
TESTS_BIN = BUILD / "tests"
TIMELINE_QUERY = Path(__file__).with_name("timeline_query.py")
PYTHON = sys.executable


@dataclass
class FakeGpus:
    """A private set of simulated GPUs (own config file and timeline)."""

    config: Path
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):
            if key.startswith("STRETTO_") or key == "LD_PRELOAD":
                del env[key]
        env["STRETTO_FAKE_GPU_CONFIG"] = str(self.config)
        env["LD_LIBRARY_PATH"] = f"{FAKE}:{env.get('LD_LIBRARY_PATH', '')}"
        env.update(extra)
        return env

    def shim_env(self, **extra: str) -> dict[str, str]:
        return self.env(LD_PRELOAD=str(SHIM), **extra)

    def busy(self, queries: list[tuple[int, int, int, int]]) -> list[float]:
        """Busy fraction (0..1) of (gpu, pid or 0, t0_ns, t1_ns) on the simulated timeline."""
        out = subprocess.run([PYTHON, str(TIMELINE_QUERY), json.dumps(queries)], env=self.env(),
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)


def make_fake_gpus(root: Path, gpus: list[tuple[str, str]], **settings: str) -> FakeGpus:
    root.mkdir(parents=True, exist_ok=True)
    lines = [f"gpu = {name}, {mem}" for name, mem in gpus]
    lines.append(f"timeline = {root / 'timeline'}")
    lines += [f"{k} = {v}" for k, v in settings.items()]
    config = root / "fakegpu.conf"
    config.write_text("\n".join(lines) + "\n")
    return FakeGpus(config=config, root=root)


def run_json(cmd: list[str], env: dict[str, str], timeout: float = 60) -> list[dict]:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{cmd} printed no JSON (rc {proc.returncode}): {proc.stdout}\n{proc.stderr}"
    return lines
