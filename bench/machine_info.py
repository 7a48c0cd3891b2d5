"""The one-line description of the machine every benchmark prints beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe(note: str = "") -> str:
    """e.g. 'Linux-6.18-x86_64 | AMD EPYC | 2 CPUs | Python 3.11.7'; `note` is appended to the CPU count."""
    cpus = f"{os.cpu_count()} CPUs{f' ({note})' if note else ''}"
    return f"{platform.platform()} | {cpu_model()} | {cpus} | Python {platform.python_version()}"
