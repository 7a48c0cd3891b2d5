"""The files a container's GPU share lives in, as the node daemon writes and reads them.

Sits between the daemon (this package) and the C shim (native/include/stretto_control.h, the
authoritative layout). Two files per container, under
``<control root>/<pod uid>/<container>/``:

- ``config/control``: 128 bytes, written by the daemon as a whole (temporary file + rename),
  mounted read-only into the container. Magic, version, size and a CRC-32 guard it; the shim
  refuses anything else and keeps its last good limits.
- ``state/ledger``: the shared memory ledger the shim processes of the container map read-write
  (memory reserved per device, per-process slots, the launch token bucket and its counters). The
  daemon creates it empty and reads it for metrics and for the controller.

The names the operator's pod builder shares with the daemon and the shim (env vars, mount paths)
are in ``stretto.contracts``.
No Kubernetes imports.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from stretto.contracts import CONFIG_SUBDIR, CONTROL_FILE_NAME, LEDGER_FILE_NAME, STATE_SUBDIR

# ---- control file layout ----------------------------------------------------------------------

CONTROL_MAGIC = 0x43525453  # b"STRC" little-endian
CONTROL_VERSION = 1
CONTROL_SIZE = 128
FLAG_MEMORY_LIMITED = 0x1
FLAG_UTIL_LIMITED = 0x2
BP_FULL = 10_000  # basis points: 100 % of one GPU

# magic, version, size, generation, written_unix_ns, stale_after_ms, flags, memory_limit_bytes,
# util_min_bp, util_max_bp, util_cap_bp, burst_ms, rate, fallback_rate, device_count, reserved0,
# reserved[44], crc32
_CONTROL = struct.Struct("<IHHQQIIQIIIIQQII44sI")
assert _CONTROL.size == CONTROL_SIZE

CONTROL_OFFSETS = {
    "magic": 0, "version": 4, "size": 6, "generation": 8, "written_unix_ns": 16, "stale_after_ms": 24,
    "flags": 28, "memory_limit_bytes": 32, "util_min_bp": 40, "util_max_bp": 44, "util_cap_bp": 48,
    "burst_ms": 52, "rate_tokens_per_s": 56, "fallback_rate_tokens_per_s": 64, "device_count": 72,
    "reserved0": 76, "reserved": 80, "crc32": 124,
}


class ControlFileError(ValueError):
    """A control file the shim would refuse; the message says why."""


class ControlBlock(BaseModel):
    """One control file: the limits the shim enforces for one container."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int = Field(0, ge=0, lt=2**64, description="incremented on every write")
    written_unix_ns: int = Field(0, ge=0, lt=2**64, description="heartbeat, ns since the epoch")
    stale_after_ms: int = Field(30_000, ge=0, lt=2**32, description="heartbeat age (ms) before fallback; 0 never")
    memory_limit_bytes: int | None = Field(None, ge=1, lt=2**64, description="per-device cap, bytes; None: none")
    util_min_bp: int = Field(0, ge=0, le=BP_FULL, description="guaranteed utilization, basis points")
    util_max_bp: int = Field(BP_FULL, ge=0, le=BP_FULL, description="ceiling utilization, basis points")
    util_cap_bp: int = Field(BP_FULL, ge=0, le=BP_FULL, description="ceiling in force now, basis points")
    burst_ms: int = Field(50, ge=0, lt=2**32, description="bucket depth in ms of the rate")
    rate_tokens_per_s: int | None = Field(None, ge=1, lt=2**64, description="bucket rate; None: unlimited")
    fallback_rate_tokens_per_s: int = Field(0, ge=0, lt=2**64, description="rate at util_min; 0: keep last")
    device_count: int = Field(1, ge=0, lt=2**32, description="devices the container sees")

    @property
    def flags(self) -> int:
        return (FLAG_MEMORY_LIMITED if self.memory_limit_bytes is not None else 0) | (
            FLAG_UTIL_LIMITED if self.rate_tokens_per_s is not None else 0
        )


def encode_control(block: ControlBlock) -> bytes:
    if block.util_min_bp > block.util_max_bp:
        raise ControlFileError("util_min_bp above util_max_bp")
    body = _CONTROL.pack(
        CONTROL_MAGIC, CONTROL_VERSION, CONTROL_SIZE, block.generation, block.written_unix_ns,
        block.stale_after_ms, block.flags, block.memory_limit_bytes or 0, block.util_min_bp,
        block.util_max_bp, block.util_cap_bp, block.burst_ms, block.rate_tokens_per_s or 0,
        block.fallback_rate_tokens_per_s, block.device_count, 0, b"\0" * 44, 0,
    )
    crc = zlib.crc32(body[: CONTROL_SIZE - 4])
    return body[: CONTROL_SIZE - 4] + struct.pack("<I", crc)


def decode_control(data: bytes) -> ControlBlock:
    """Decode with the shim's rules; raises ControlFileError for what the shim would refuse."""
    if len(data) < CONTROL_SIZE:
        raise ControlFileError("truncated")
    fields = _CONTROL.unpack_from(data)
    (magic, version, size, generation, written, stale, flags, memory, umin, umax, ucap, burst, rate,
     fallback, devices, _reserved0, _reserved, crc) = fields
    if magic != CONTROL_MAGIC:
        raise ControlFileError("bad magic")
    if version != CONTROL_VERSION:
        raise ControlFileError("unsupported version")
    if size != CONTROL_SIZE or len(data) != CONTROL_SIZE:
        raise ControlFileError("bad size")
    if zlib.crc32(data[: CONTROL_SIZE - 4]) != crc:
        raise ControlFileError("bad checksum")
    if umin > umax or umax > BP_FULL or ucap > BP_FULL:
        raise ControlFileError("utilization out of range")
    if flags & FLAG_UTIL_LIMITED and rate == 0:
        raise ControlFileError("zero rate")
    return ControlBlock(
        generation=generation, written_unix_ns=written, stale_after_ms=stale,
        memory_limit_bytes=memory if flags & FLAG_MEMORY_LIMITED else None, util_min_bp=umin,
        util_max_bp=umax, util_cap_bp=ucap, burst_ms=burst,
        rate_tokens_per_s=rate if flags & FLAG_UTIL_LIMITED else None, fallback_rate_tokens_per_s=fallback,
        device_count=devices,
    )


def write_control_file(path: Path, block: ControlBlock) -> None:
    """Replace the control file atomically: readers see the old or the new file, never a mix."""
    data = encode_control(block)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".control.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_control_file(path: Path) -> ControlBlock:
    return decode_control(path.read_bytes())


# ---- ledger (written by the shim, read here) ---------------------------------------------------

LEDGER_MAGIC = 0x4C525453  # b"STRL"
LEDGER_VERSION = 1
LEDGER_FILE_SIZE = 65_536
MAX_DEVICES = 16
MAX_SLOTS = 256
LEDGER_OFFSETS = {
    "magic": 0, "version": 4, "size": 8, "max_slots": 12, "max_devices": 16, "mutex": 64, "bucket": 128,
    "mem_limit": 192, "mem_used": 320, "mem_peak": 448, "controller_pid": 576, "controller_start": 584,
    "oom_events": 592, "slots": 640,
}
BUCKET_OFFSETS = {
    "rate_tokens_per_s": 0, "tokens_micro": 8, "last_refill_ns": 16, "burst_micro": 24, "consumed_tokens": 32,
    "launches": 40, "throttled_ns": 48, "applied_generation": 56,
}
SLOT_SIZE = 160
SLOT_OFFSETS = {"pid": 0, "start_time": 8, "bytes": 32}
_HEADER = struct.Struct("<IHHIII")
_BUCKET = struct.Struct("<QqQqQQQQ")
_DEVICES = struct.Struct(f"<{MAX_DEVICES}Q")


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """What the shim processes of one container report: read without locking (metrics only)."""

    rate_tokens_per_s: int
    consumed_tokens: int
    launches: int
    throttled_ns: int
    mem_limit: tuple[int, ...]
    mem_used: tuple[int, ...]
    mem_peak: tuple[int, ...]
    oom_events: int
    pids: tuple[int, ...]

    @classmethod
    def empty(cls) -> LedgerSnapshot:
        zeros = (0,) * MAX_DEVICES
        return cls(0, 0, 0, 0, zeros, zeros, zeros, 0, ())


def create_ledger(path: Path) -> None:
    """Create an empty ledger (the first shim process initialises it), writable by any container uid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        os.ftruncate(fd, LEDGER_FILE_SIZE)
        os.fchmod(fd, 0o666)
    finally:
        os.close(fd)


def read_ledger(path: Path) -> LedgerSnapshot:
    """Snapshot of a ledger; an absent or not yet initialised one reads as empty."""
    try:
        with open(path, "rb") as f:
            data = f.read(LEDGER_OFFSETS["slots"] + MAX_SLOTS * SLOT_SIZE)
    except FileNotFoundError:
        return LedgerSnapshot.empty()
    if len(data) < LEDGER_OFFSETS["slots"]:
        return LedgerSnapshot.empty()
    magic, version, _reserved, _size, _slots, _devs = _HEADER.unpack_from(data, 0)
    if magic != LEDGER_MAGIC or version != LEDGER_VERSION:
        return LedgerSnapshot.empty()
    rate, _tokens, _last, _burst, consumed, launches, throttled, _gen = _BUCKET.unpack_from(
        data, LEDGER_OFFSETS["bucket"]
    )
    pids = []
    for i in range(MAX_SLOTS):
        off = LEDGER_OFFSETS["slots"] + i * SLOT_SIZE
        if off + 4 > len(data):
            break
        (pid,) = struct.unpack_from("<I", data, off)
        if pid:
            pids.append(pid)
    return LedgerSnapshot(
        rate_tokens_per_s=rate, consumed_tokens=consumed, launches=launches, throttled_ns=throttled,
        mem_limit=_DEVICES.unpack_from(data, LEDGER_OFFSETS["mem_limit"]),
        mem_used=_DEVICES.unpack_from(data, LEDGER_OFFSETS["mem_used"]),
        mem_peak=_DEVICES.unpack_from(data, LEDGER_OFFSETS["mem_peak"]),
        oom_events=struct.unpack_from("<Q", data, LEDGER_OFFSETS["oom_events"])[0],
        pids=tuple(pids),
    )


# ---- paths and the pod builder's additions -------------------------------------------------------


def container_dir(root: Path, pod_uid: str, container: str) -> Path:
    return root / pod_uid / container


def control_path(root: Path, pod_uid: str, container: str) -> Path:
    return container_dir(root, pod_uid, container) / CONFIG_SUBDIR / CONTROL_FILE_NAME


def ledger_path(root: Path, pod_uid: str, container: str) -> Path:
    return container_dir(root, pod_uid, container) / STATE_SUBDIR / LEDGER_FILE_NAME


