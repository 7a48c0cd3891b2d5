"""The mock NVML: unmodified pynvml loads it and sees the fake kernels' busy time."""

from __future__ import annotations

import subprocess

from gpu_support import FAKE, PYTHON, TESTS_BIN, make_fake_gpus, run_json

PYNVML_PROBE = """
import warnings; warnings.simplefilter("ignore")
import json, os, pynvml
pynvml.nvmlInit()
out = {"lib": pynvml.nvmlLib._name, "count": pynvml.nvmlDeviceGetCount(), "gpus": []}
for i in range(out["count"]):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    m = pynvml.nvmlDeviceGetMemoryInfo(h)
    name = pynvml.nvmlDeviceGetName(h)
    try:
        procs = {s.pid: s.smUtil for s in pynvml.nvmlDeviceGetProcessUtilization(h, 0)}
    except pynvml.NVMLError_NotFound:
        procs = {}
    out["gpus"].append({"name": name if isinstance(name, str) else name.decode(), "total": m.total,
                        "util": pynvml.nvmlDeviceGetUtilizationRates(h).gpu, "procs": procs,
                        "uuid": pynvml.nvmlDeviceGetUUID(h)})
pynvml.nvmlShutdown()
print(json.dumps(out))
"""


def test_unmodified_pynvml_loads_the_mock_through_ld_library_path(tmp_path):
    gpus = make_fake_gpus(tmp_path, [("Stretto Fake H100 80GB", "80Gi"), ("Stretto Fake T4", "15Gi"),
                                     ("Stretto Fake T4", "15Gi")], nvml_window_ms="500")
    workload = subprocess.Popen([str(TESTS_BIN / "workload"), "--seconds", "2", "--device", "1"], env=gpus.env(),
                                stdout=subprocess.PIPE, text=True)
    try:
        assert workload.stdout is not None and workload.stdout.readline().strip() == "started"
        subprocess.run(["sleep", "0.8"], check=True)
        (out,) = run_json([PYTHON, "-c", PYNVML_PROBE], gpus.env())
    finally:
        workload.wait()
    assert out["lib"] == "libnvidia-ml.so.1" and out["count"] == 3
    assert [g["name"] for g in out["gpus"]] == ["Stretto Fake H100 80GB", "Stretto Fake T4", "Stretto Fake T4"]
    assert [g["total"] for g in out["gpus"]] == [80 << 30, 15 << 30, 15 << 30]
    busy, idle = out["gpus"][1], out["gpus"][0]
    assert busy["util"] >= 80 and idle["util"] == 0  # utilization is the fake kernels' busy time
    assert list(busy["procs"]) == [str(workload.pid)] and busy["procs"][str(workload.pid)] >= 80
    assert idle["procs"] == {}
    assert len({g["uuid"] for g in out["gpus"]}) == 3


def test_without_the_mock_on_the_loader_path_pynvml_finds_no_library(tmp_path):
    gpus = make_fake_gpus(tmp_path, [("x", "1Gi")])
    env = gpus.env()
    env["LD_LIBRARY_PATH"] = ""
    proc = subprocess.run([PYTHON, "-c", PYNVML_PROBE], env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "NVML Shared Library Not Found" in proc.stderr
    assert (FAKE / "libnvidia-ml.so.1").exists()
