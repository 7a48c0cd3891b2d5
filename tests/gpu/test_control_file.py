"""The control file and ledger layouts, from both sides, and the fail-safe refusals."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from gpu_support import TESTS_BIN, run_json

from stretto.gpu_interceptor import control_file as cf

TOOL = str(TESTS_BIN / "stretto-control")


def c_read(path: Path) -> dict:
    out = subprocess.run([TOOL, "read", str(path)], capture_output=True, text=True)
    return json.loads(out.stdout)


def test_c_and_python_agree_on_every_offset():
    layout = json.loads(subprocess.run([TOOL, "layout"], capture_output=True, text=True, check=True).stdout)
    control = layout["control"]
    assert control["size"] == [6, 2]  # the "size" field itself; the struct size is checked below
    assert layout["sizes"]["control"] == cf.CONTROL_SIZE
    for name, offset in cf.CONTROL_OFFSETS.items():
        assert control[name][0] == offset, name
    ledger = layout["ledger"]
    assert layout["sizes"]["ledger_file"] == cf.LEDGER_FILE_SIZE
    assert layout["sizes"]["ledger"] <= cf.LEDGER_FILE_SIZE
    for name, offset in cf.LEDGER_OFFSETS.items():
        assert ledger[name][0] == offset, name
    for name, offset in cf.BUCKET_OFFSETS.items():
        assert layout["bucket"][name][0] == offset, name
    assert layout["sizes"]["slot"] == cf.SLOT_SIZE
    for name, offset in cf.SLOT_OFFSETS.items():
        assert layout["slot"][name][0] == offset, name
    k = layout["constants"]
    assert (k["control_magic"], k["control_version"]) == (cf.CONTROL_MAGIC, cf.CONTROL_VERSION)
    assert (k["ledger_magic"], k["ledger_version"]) == (cf.LEDGER_MAGIC, cf.LEDGER_VERSION)
    assert (k["max_devices"], k["max_slots"]) == (cf.MAX_DEVICES, cf.MAX_SLOTS)
    assert (k["flag_memory"], k["flag_util"]) == (cf.FLAG_MEMORY_LIMITED, cf.FLAG_UTIL_LIMITED)


BLOCK = cf.ControlBlock(generation=7, written_unix_ns=1_700_000_000_123_456_789, stale_after_ms=3000,
                        memory_limit_bytes=4 << 30, util_min_bp=2000, util_max_bp=6000, util_cap_bp=5500,
                        burst_ms=50, rate_tokens_per_s=123_456, fallback_rate_tokens_per_s=44_893, device_count=1)


def test_python_writes_what_the_shim_reads(tmp_path):
    path = tmp_path / "control"
    cf.write_control_file(path, BLOCK)
    assert path.stat().st_size == 128
    got = c_read(path)
    assert got == {
        "generation": 7, "written_unix_ns": 1_700_000_000_123_456_789, "stale_after_ms": 3000, "flags": 3,
        "memory_limit_bytes": 4 << 30, "util_min_bp": 2000, "util_max_bp": 6000, "util_cap_bp": 5500,
        "burst_ms": 50, "rate_tokens_per_s": 123_456, "fallback_rate_tokens_per_s": 44_893, "device_count": 1,
    }


def test_the_shim_side_writes_what_python_reads_byte_for_byte(tmp_path):
    path = tmp_path / "control"
    fields = {k: v for k, v in c_read_fields().items()}
    subprocess.run([TOOL, "write", str(path), *[f"{k}={v}" for k, v in fields.items()]], check=True)
    assert cf.read_control_file(path) == BLOCK
    assert path.read_bytes() == cf.encode_control(BLOCK)


def c_read_fields() -> dict[str, int]:
    return {"generation": 7, "written_unix_ns": 1_700_000_000_123_456_789, "stale_after_ms": 3000, "flags": 3,
            "memory_limit_bytes": 4 << 30, "util_min_bp": 2000, "util_max_bp": 6000, "util_cap_bp": 5500,
            "burst_ms": 50, "rate_tokens_per_s": 123_456, "fallback_rate_tokens_per_s": 44_893, "device_count": 1}


def _corruptions() -> dict[str, bytes]:
    good = cf.encode_control(BLOCK)
    flipped = bytearray(good)
    flipped[40] ^= 0x01
    wrong_version = bytearray(good)
    wrong_version[4] = 2
    return {"truncated": good[:100], "empty": b"", "bit flip": bytes(flipped), "future version": bytes(wrong_version),
            "too long": good + b"\0", "garbage": b"\xff" * 128}


@pytest.mark.parametrize("name", list(_corruptions()))
def test_corrupt_or_truncated_files_are_refused_by_both_sides(tmp_path, name):
    data = _corruptions()[name]
    path = tmp_path / "control"
    path.write_bytes(data)
    assert "refused" in c_read(path)
    with pytest.raises(cf.ControlFileError):
        cf.decode_control(data)


def test_a_refused_file_keeps_the_last_good_limits_in_a_running_shim(fake_gpus, tmp_path):
    control, ledger = tmp_path / "config" / "control", tmp_path / "state" / "ledger"
    cf.create_ledger(ledger)
    good = BLOCK.model_copy(update={"memory_limit_bytes": 512 << 20, "written_unix_ns": time.time_ns(),
                                    "stale_after_ms": 0})
    cf.write_control_file(control, good)
    env = fake_gpus.shim_env(STRETTO_CONTROL_FILE=str(control), STRETTO_LEDGER_FILE=str(ledger),
                             STRETTO_POLL_MS="20")
    holder = subprocess.Popen([str(TESTS_BIN / "probe_linked"), "--chunk-mib", "64", "--max-mib", "64", "--hold"],
                              env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert json.loads(holder.stdout.readline())["info_total_after"] == 512 << 20
        for bad in (b"\0" * 10, cf.encode_control(good)[:64], b"STRC" + b"\xff" * 124):
            control.write_bytes(bad)  # truncated, half a file, garbage: the running shim must not care
            time.sleep(0.15)
            assert cf.read_ledger(ledger).mem_limit[0] == 512 << 20
        # A new process of the container joins with the limits already in the ledger? No: it must
        # find a valid file; an invalid one at start is a fail-closed refusal, never "unlimited".
        (late,) = run_json([str(TESTS_BIN / "probe_linked")], env | {"STRETTO_CONTROL_WAIT_MS": "200"})
        assert late == {"init": 3}
        cf.write_control_file(control, good.model_copy(update={"memory_limit_bytes": 256 << 20, "generation": 8}))
        deadline = time.monotonic() + 2
        while cf.read_ledger(ledger).mem_limit[0] != 256 << 20:
            assert time.monotonic() < deadline, "a good file after bad ones is adopted"
            time.sleep(0.02)
    finally:
        holder.kill()
        holder.wait()
