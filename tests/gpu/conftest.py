"""Fixtures for the GPU interceptor tests: the native build, fake GPUs, in-process NVML.

Every test runs against the real shim, fake libcuda and mock NVML built by the Makefile the
README documents. A failed build fails the session loudly; nothing is skipped.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import gpu_support (pytest runs --import-mode=importlib)

from gpu_support import BUILD, FAKE, NATIVE, SHIM, FakeGpus, make_fake_gpus


@pytest.fixture(scope="session", autouse=True)
def native_build() -> Path:
    proc = subprocess.run(["make", "-C", str(NATIVE), "-j2"], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"make -C {NATIVE} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}", pytrace=False)
    for path in (SHIM, FAKE / "libcuda.so.1", FAKE / "libnvidia-ml.so.1"):
        if not path.exists():
            pytest.fail(f"the build did not produce {path}", pytrace=False)
    return BUILD


@pytest.fixture
def fake_gpus(tmp_path: Path) -> FakeGpus:
    return make_fake_gpus(tmp_path / "gpus", [("Stretto Fake H100 80GB", "80Gi"), ("Stretto Fake L4", "24Gi")])


@pytest.fixture(scope="session")
def inprocess_nvml(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGpus]:
    """The mock NVML loaded into this interpreter, found by pynvml through its SONAME.

    pynvml dlopens "libnvidia-ml.so.1"; loading the mock by absolute path first makes the loader
    hand pynvml the already-loaded object. Its configuration is read once per process.
    """
    gpus = make_fake_gpus(tmp_path_factory.mktemp("inproc"), [("Stretto Fake A100 40GB", "40Gi"),
                                                               ("Stretto Fake A100 40GB", "40Gi")])
    os.environ["STRETTO_FAKE_GPU_CONFIG"] = str(gpus.config)
    ctypes.CDLL(str(FAKE / "libnvidia-ml.so.1"), mode=ctypes.RTLD_GLOBAL)
    yield gpus
