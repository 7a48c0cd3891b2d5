"""GPU measurements through pynvml: the real NVML on GPU nodes, Stretto's mock NVML in tests.

The same code serves both: pynvml loads ``libnvidia-ml.so.1`` through the dynamic loader, so a
node (or a test) that puts native/build/fake first on LD_LIBRARY_PATH gets the mock. There is no
Python fake.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)  # the pynvml shim package warns; the module is nvidia-ml-py
    import pynvml


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    name: str
    utilization_pct: float
    memory_used: int
    memory_total: int


class NvmlBackend:
    """Reads devices and per-process utilization; remembers each device's last sample time."""

    def __init__(self) -> None:
        pynvml.nvmlInit()
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self._names = [self._name(h) for h in self._handles]
        self._last_seen = [0] * len(self._handles)

    @staticmethod
    def _name(handle: object) -> str:
        name = pynvml.nvmlDeviceGetName(handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    @property
    def device_count(self) -> int:
        return len(self._handles)

    def device(self, index: int) -> GpuSample:
        h = self._handles[index]
        mem = pynvml.nvmlDeviceGetMemoryInfo(h)
        util = pynvml.nvmlDeviceGetUtilizationRates(h)
        return GpuSample(index, self._names[index], float(util.gpu), int(mem.used), int(mem.total))

    def process_utilization(self, index: int) -> dict[int, float]:
        """Per-pid SM utilization (percent) since the previous call for this device."""
        try:
            samples = pynvml.nvmlDeviceGetProcessUtilization(self._handles[index], self._last_seen[index])
        except pynvml.NVMLError_NotFound:
            return {}  # no process ran on the device in the interval
        acc: dict[int, list[float]] = defaultdict(list)
        for s in samples:
            acc[int(s.pid)].append(float(s.smUtil))
            self._last_seen[index] = max(self._last_seen[index], int(s.timeStamp))
        return {pid: sum(v) / len(v) for pid, v in acc.items()}

    def close(self) -> None:
        pynvml.nvmlShutdown()
