"""Busy fractions from the simulated GPU timeline, through the mock NVML's test extension.

Run as a script (so each test's fake-GPU configuration applies): argv[1] is a JSON list of
[gpu, pid (0: any), t0_ns, t1_ns] on CLOCK_MONOTONIC (Python's time.monotonic_ns); prints a JSON
list of busy fractions.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "gpu_interceptor" / "native" / "build" / "fake" / "libnvidia-ml.so.1"


def main() -> None:
    lib = ctypes.CDLL(str(LIB))
    lib.stretto_mock_busy_ns.restype = ctypes.c_uint64
    lib.stretto_mock_busy_ns.argtypes = [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint64, ctypes.c_uint64]
    out = []
    for gpu, pid, t0, t1 in json.loads(sys.argv[1]):
        out.append(lib.stretto_mock_busy_ns(gpu, pid, t0, t1) / (t1 - t0))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
