"""Memory cap: exact under concurrency, OOM code, virtualized totals, reaping, fail-closed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from gpu_support import PYTHON, SHIM, TESTS_BIN, FakeGpus, run_json

from stretto.gpu_interceptor import control_file as cf

MiB = 1 << 20
CAP = 1000 * MiB


def probe(gpus: FakeGpus, ledger, *args: str, cap: str = "1000Mi", shim: bool = True, **env: str) -> list[dict]:
    e = gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT=cap, STRETTO_LEDGER_FILE=str(ledger), **env) if shim else gpus.env()
    return run_json([str(TESTS_BIN / "probe_linked"), *args], e)


def test_first_allocation_over_the_cap_is_out_of_memory_and_totals_report_the_cap(fake_gpus, tmp_path):
    first, after_free = probe(fake_gpus, tmp_path / "ledger", "--chunk-mib", "64", "--free-at-end")
    assert first["allocated"] == 15 * 64 * MiB  # 16 * 64 MiB would pass 1000 MiB
    assert first["first_error"] == 2  # CUDA_ERROR_OUT_OF_MEMORY
    assert first["info_total_before"] == CAP and first["info_total_after"] == CAP
    assert first["info_free_before"] == CAP and first["info_free_after"] == CAP - 15 * 64 * MiB
    assert first["device_total"] == CAP
    assert after_free["info_free_after_free"] == CAP
    assert after_free["realloc_all"] == 0  # freed memory is allocatable again, to the byte


def test_without_the_shim_the_same_program_is_not_capped(fake_gpus, tmp_path):
    (out,) = probe(fake_gpus, tmp_path / "ledger", "--chunk-mib", "64", "--max-mib", "4096", shim=False)
    assert out["allocated"] == 4096 * MiB and out["first_error"] == 0


@pytest.mark.parametrize("api", ["pitch", "managed", "async", "create", "array", "array3d", "mipmap"])
def test_every_allocating_entry_point_is_charged_and_credited(fake_gpus, tmp_path, api):
    first, after_free = probe(fake_gpus, tmp_path / "ledger", "--api", api, "--chunk-mib", "64", "--free-at-end")
    assert first["first_error"] == 2, first
    assert first["allocated"] == 15 * 64 * MiB, first
    assert first["info_free_after"] == CAP - 15 * 64 * MiB
    assert after_free["info_free_after_free"] == CAP, after_free
    ledger = cf.read_ledger(tmp_path / "ledger")
    assert ledger.oom_events >= 1 and ledger.mem_peak[0] <= CAP


@pytest.mark.parametrize("run", range(3))
def test_sixteen_processes_of_one_container_never_pass_the_cap(fake_gpus, tmp_path, run):
    env = fake_gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT="1000Mi", STRETTO_LEDGER_FILE=str(tmp_path / "ledger"),
                             STRETTO_FAKE_ALLOC_LATENCY_US="300")
    (out,) = run_json([str(TESTS_BIN / "mp_alloc"), "16", "8"], env)
    assert out["total"] <= CAP, f"run {run}: {out['total'] / MiB} MiB live at once"
    assert out["total"] > CAP - 8 * MiB  # exact: not refusing early either
    assert out["errors"] == [2] * 16
    assert cf.read_ledger(tmp_path / "ledger").mem_peak[0] <= CAP


def test_a_killed_process_returns_its_memory_within_one_second(fake_gpus, tmp_path):
    ledger = tmp_path / "ledger"
    env = fake_gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT="1000Mi", STRETTO_LEDGER_FILE=str(ledger))

    def hold(mib: int) -> subprocess.Popen:
        p = subprocess.Popen([str(TESTS_BIN / "probe_linked"), "--chunk-mib", str(mib), "--max-mib", str(mib),
                              "--hold"], env=env, stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None
        assert json.loads(p.stdout.readline())["allocated"] == mib * MiB
        assert p.stdout.readline().strip() == "held"
        return p

    victim, survivor = hold(600), hold(64)
    try:
        assert cf.read_ledger(ledger).mem_used[0] == 664 * MiB
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        killed_at = time.monotonic()
        while cf.read_ledger(ledger).mem_used[0] != 64 * MiB:
            assert time.monotonic() - killed_at < 1.0, "memory of the killed process not back after 1 s"
            time.sleep(0.02)
        (out,) = probe(fake_gpus, ledger, "--chunk-mib", "936", "--max-mib", "936")
        assert out["allocated"] == 936 * MiB and out["first_error"] == 0
    finally:
        survivor.kill()
        victim.kill()
        survivor.wait()


def test_no_limits_anywhere_fails_closed_and_open_is_explicit(fake_gpus):
    (closed,) = run_json([str(TESTS_BIN / "probe_linked")], fake_gpus.shim_env())
    assert closed == {"init": 3}  # CUDA_ERROR_NOT_INITIALIZED: refuses to run uncapped
    (bad,) = run_json([str(TESTS_BIN / "probe_linked")], fake_gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT="lots"))
    assert bad == {"init": 3}
    (opened,) = run_json([str(TESTS_BIN / "probe_linked"), "--chunk-mib", "64", "--max-mib", "2048"],
                         fake_gpus.shim_env(STRETTO_FAILSAFE="open"))
    assert opened["allocated"] == 2048 * MiB


NVML_MEMORY = """
import warnings; warnings.simplefilter("ignore")
import ctypes, json, pynvml
cuda = ctypes.CDLL("libcuda.so.1")
dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
assert cuda.cuInit(0) == 0 and cuda.cuDeviceGet(ctypes.byref(dev), 0) == 0
assert cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) == 0
assert cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(300 << 20)) == 0
pynvml.nvmlInit()
h = pynvml.nvmlDeviceGetHandleByIndex(0)
v1 = pynvml.nvmlDeviceGetMemoryInfo(h)
v2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
print(json.dumps({"v1": [v1.total, v1.used, v1.free], "v2": [v2.total, v2.used, v2.free]}))
"""


def test_nvml_memory_queries_inside_the_container_report_the_cap(fake_gpus, tmp_path):
    env = fake_gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT="1000Mi", STRETTO_LEDGER_FILE=str(tmp_path / "ledger"))
    (out,) = run_json([PYTHON, "-c", NVML_MEMORY], env)
    assert out["v1"] == [CAP, 300 * MiB, CAP - 300 * MiB]
    assert out["v2"] == [CAP, 300 * MiB, CAP - 300 * MiB]
    (plain,) = run_json([PYTHON, "-c", NVML_MEMORY], fake_gpus.env())
    assert plain["v1"][0] == 80 * 1024 * MiB  # without the shim: the physical total


def test_shim_library_exports_only_driver_nvml_and_dlsym_symbols():
    out = subprocess.run(["nm", "-D", "--defined-only", str(SHIM)], capture_output=True, text=True, check=True)
    names = {line.split()[-1] for line in out.stdout.splitlines()}
    assert "dlsym" in names and "cuMemAlloc_v2" in names and "cuGetProcAddress_v2" in names
    assert "nvmlDeviceGetMemoryInfo" in names
    stray = {n for n in names if not (n == "dlsym" or n.startswith(("cu", "nvml")))}
    assert not stray
