"""Interception coverage: the cap holds on every path a program takes to the driver."""

from __future__ import annotations

import subprocess

import pytest
from gpu_support import TESTS_BIN, run_json

MiB = 1 << 20

PATHS = {
    "linked": ["probe_linked"],
    "dlopen+dlsym": ["probe_dl", "--path", "dlsym"],
    "gpa_v2 12.0": ["probe_dl", "--path", "gpa", "--cuda-version", "12000"],
    "gpa_v2 12.8": ["probe_dl", "--path", "gpa", "--cuda-version", "12080"],
    "gpa_v2 13.0": ["probe_dl", "--path", "gpa", "--cuda-version", "13000"],
    "gpa_v2 ptds": ["probe_dl", "--path", "gpa", "--ptds"],
    "gpa 11.3 abi": ["probe_dl", "--path", "gpa11", "--cuda-version", "11030"],
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("api", ["alloc", "async"])
def test_the_cap_holds_on_every_access_path(fake_gpus, tmp_path, path, api):
    if path == "gpa 11.3 abi" and api == "async":
        api = "managed"  # cuMemAllocAsync needs CUDA 11.2+ but 11.3's table is enough; keep the path honest
    binary, *args = PATHS[path]
    cmd = [str(TESTS_BIN / binary), *args, "--api", api, "--chunk-mib", "64", "--max-mib", "4096"]
    (capped,) = run_json(cmd, fake_gpus.shim_env(STRETTO_GPU_MEMORY_LIMIT="1000Mi",
                                                 STRETTO_LEDGER_FILE=str(tmp_path / "ledger")))
    assert capped["allocated"] == 15 * 64 * MiB and capped["first_error"] == 2, capped
    assert capped["info_total_after"] == 1000 * MiB
    (free,) = run_json(cmd, fake_gpus.env())
    assert free["allocated"] == 4096 * MiB, f"the test itself must allocate past the cap without the shim: {free}"


def test_rtld_next_lookups_keep_their_meaning_through_the_dlsym_hook(fake_gpus):
    env = fake_gpus.shim_env(STRETTO_FAILSAFE="open")
    out = subprocess.run([str(TESTS_BIN / "rtld_next_caller")], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"  # the foo after librtld_a is librtld_b's, not the first one found
