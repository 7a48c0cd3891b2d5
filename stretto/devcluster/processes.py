"""Start, find and stop the dev cluster's background processes.

Every process runs in its own session (so a stop can signal its whole group), logs to a file in the
run directory, and is recorded by pid *and* executable so a stop never signals a recycled pid that
now belongs to something else.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    executable: str
    log: str
    # How it was started (the environment: only what was set beyond the caller's own), so a
    # crashed or killed process can be started again exactly as it was.
    argv: tuple[str, ...] = ()
    extra_env: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        """True while the recorded pid runs and is not a zombie, and is still the recorded program.

        An empty command line (a process in the middle of exec, or unreadable for a moment) is not
        taken as proof of a recycled pid; only a different, non-empty one is.
        """
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return False
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        arguments = [part.decode(errors="replace") for part in cmdline if part]
        return not arguments or self.executable in arguments[:3]


def free_port() -> int:
    """An unused loopback TCP port (a tiny race remains; starts retry on 'address in use')."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, argv: list[str] | tuple[str, ...], log_dir: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> ProcessRecord:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    environment = dict(os.environ if env is None else env)
    extra_env = {k: v for k, v in environment.items() if os.environ.get(k) != v}
    environment.setdefault("NO_PROXY", "127.0.0.1,localhost")
    environment.setdefault("no_proxy", "127.0.0.1,localhost")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=environment, cwd=cwd, start_new_session=True,
        )
    return ProcessRecord(name=name, pid=process.pid, executable=argv[0], log=str(log_path), argv=tuple(argv),
                         extra_env=extra_env)


RESTART_ATTEMPTS = 5


def restart(record: ProcessRecord, log_dir: Path) -> ProcessRecord:
    """SIGKILL the process (if it still runs) and start it again as it was started.

    A big process (kube-apiserver under load) can take seconds to die and free its port; the new one
    then fails at once with "address already in use", so that start is tried again."""
    if not record.argv:
        raise ValueError(f"{record.name} was recorded without its command line; it cannot be restarted")
    if not kill(record, wait_seconds=30):
        raise RuntimeError(f"{record.name} (pid {record.pid}) did not die within 30 s of SIGKILL")
    for _ in range(RESTART_ATTEMPTS):
        size = Path(record.log).stat().st_size if Path(record.log).exists() else 0
        fresh = start(record.name, record.argv, log_dir, env={**os.environ, **record.extra_env})
        time.sleep(1.0)
        if fresh.alive():
            return fresh
        _reap(fresh.pid)
        with Path(fresh.log).open("rb") as log:
            log.seek(size)
            if b"address already in use" not in log.read():
                raise RuntimeError(f"{record.name} exited at once after a restart; see {fresh.log}")
        time.sleep(1.0)
    raise RuntimeError(f"{record.name} could not get its port back after {RESTART_ATTEMPTS} starts; see {record.log}")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group, wait for the grace period, then SIGKILL what is left."""
    if not record.alive():
        _reap(record.pid)
        return
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not record.alive():
            return
        time.sleep(0.1)
    _signal_group(record.pid, signal.SIGKILL)
    for _ in range(50):
        _reap(record.pid)
        if not record.alive():
            return
        time.sleep(0.1)


def kill(record: ProcessRecord, wait_seconds: float = 2.5) -> bool:
    """SIGKILL at once: what a crash looks like to the rest of the cluster. True once it is gone."""
    if record.alive():
        _signal_group(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + wait_seconds
    while True:
        _reap(record.pid)
        if not record.alive():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def log_tail(record: ProcessRecord, lines: int = 30) -> str:
    try:
        return "\n".join(Path(record.log).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
