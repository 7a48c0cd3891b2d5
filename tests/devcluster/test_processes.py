"""Restarting a dev-cluster process as it was started: same command line, same port, its own log."""

from __future__ import annotations

import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stretto.devcluster import processes
from tests.integration.harness import wait_for


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_killed_server_comes_back_on_its_port(tmp_path: Path):
    port = processes.free_port()
    argv = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)]
    first = processes.start("web", argv, tmp_path, env={"STRETTO_TEST_MARK": "kept"})
    try:
        wait_for(lambda: answers(port), 15, "the server to answer")
        assert first.argv == tuple(argv) and first.extra_env == {"STRETTO_TEST_MARK": "kept"}
        second = processes.restart(first, tmp_path)
        assert not first.alive() and second.alive() and second.pid != first.pid
        assert second.argv == first.argv and second.extra_env == first.extra_env
        wait_for(lambda: answers(port), 15, "the restarted server to answer on the same port")
    finally:
        processes.stop(second if "second" in locals() else first)


def test_a_start_that_exits_at_once_is_an_error_with_its_log(tmp_path: Path):
    record = processes.start("broken", [sys.executable, "-c", "pass"], tmp_path)
    time.sleep(0.5)
    broken = processes.ProcessRecord(record.name, record.pid, record.executable, record.log,
                                     (sys.executable, "-c", "import sys; sys.exit(3)"), {})
    with pytest.raises(RuntimeError, match=r"exited at once after a restart; see .*broken\.log"):
        processes.restart(broken, tmp_path)
