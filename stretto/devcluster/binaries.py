"""Build the control-plane binaries from pinned Go modules, once, and cache them by version.

The pins are three of the wrapper modules in `gomod/` (go.mod + go.sum, checked in): Kubernetes 1.36.3
(kube-apiserver, kube-controller-manager, kube-scheduler, and kubectl for users of the dev cluster),
etcd 3.6.14 and kwok 0.8.0; the others pin the chart tests' tools (`go_tools.py`). The cache key
hashes these three pins by name, the Go version and the build flags, so a new pin or toolchain builds anew and an old
cache entry is never mistaken for a new one. Builds go to a temporary directory and are renamed into
place at the end, under a file lock, so a killed build never leaves a half-filled cache entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.14"
KWOK_VERSION = "v0.8.0"
MINIMUM_GO = (1, 26)

GOMOD_DIR = Path(__file__).with_name("gomod")
# The control plane's own pins, by name: the other wrapper modules in gomod/ (the chart tests' tools,
# see go_tools.py) have their own cache keys, so a new tool never forces a control-plane rebuild.
_CONTROL_PLANE_MODULES = ("etcd", "kubernetes", "kwok")
_BUILD_DATE = "2026-07-22T00:00:00Z"  # fixed, so builds are reproducible; the release date of 1.36.3
_KWOK_STAGES = ("node/fast", "node/heartbeat-with-lease", "pod/fast")

Progress = Callable[[str], None]


class PrerequisiteMissing(RuntimeError):
    """A tool the dev cluster needs is absent or too old; the message says how to fix it."""


class BuildFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Binaries:
    directory: Path

    @property
    def etcd(self) -> Path:
        return self.directory / "etcd"

    @property
    def kube_apiserver(self) -> Path:
        return self.directory / "kube-apiserver"

    @property
    def kube_controller_manager(self) -> Path:
        return self.directory / "kube-controller-manager"

    @property
    def kube_scheduler(self) -> Path:
        return self.directory / "kube-scheduler"

    @property
    def kubectl(self) -> Path:
        return self.directory / "kubectl"

    @property
    def kwok(self) -> Path:
        return self.directory / "kwok"

    @property
    def kwok_stages(self) -> Path:
        """kwok's default Stage documents (node init, heartbeat, pod lifecycle), from its module."""
        return self.directory / "kwok-stages.yaml"

    def all_present(self) -> bool:
        paths = (self.etcd, self.kube_apiserver, self.kube_controller_manager, self.kube_scheduler,
                 self.kubectl, self.kwok)
        return all(p.is_file() and os.access(p, os.X_OK) for p in paths) and self.kwok_stages.is_file()


def cache_root() -> Path:
    """$STRETTO_CACHE_DIR, else $XDG_CACHE_HOME/stretto, else ~/.cache/stretto."""
    if explicit := os.environ.get("STRETTO_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stretto"


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        raise PrerequisiteMissing(
            "The Go toolchain (>= 1.26) is required to build the local control plane, and `go` is not on "
            "PATH. Install Go 1.26 (e.g. `apt-get install golang-1.26` or from go.dev) and retry."
        )
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    parts = out.removeprefix("go").split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (IndexError, ValueError) as exc:
        raise PrerequisiteMissing(f"cannot parse the Go version {out!r}") from exc
    if (major, minor) < MINIMUM_GO:
        raise PrerequisiteMissing(f"Go >= 1.26 is required (Kubernetes 1.36 declares go 1.26.0); found {out}.")
    return out


def _ldflags() -> str:
    minor = KUBERNETES_VERSION.split(".")[1]
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion={KUBERNETES_VERSION}",
            f"-X {package}.gitMajor=1",
            f"-X {package}.gitMinor={minor}",
            f"-X {package}.gitTreeState=clean",
            f"-X {package}.buildDate={_BUILD_DATE}",
        ]
    return " ".join(flags)


def cache_key(toolchain: str) -> str:
    digest = hashlib.sha256()
    for part in (toolchain, platform.system(), platform.machine(), _ldflags()):
        digest.update(part.encode() + b"\0")
    for module in _CONTROL_PLANE_MODULES:
        for name in ("go.mod", "go.sum"):
            digest.update((GOMOD_DIR / module / name).read_bytes())
    return f"k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}-{digest.hexdigest()[:12]}"


def cached_binaries() -> Binaries | None:
    """The cached binaries for the current pins, or None when they still have to be built."""
    binaries = Binaries(cache_root() / "bin" / cache_key(go_version()))
    return binaries if binaries.all_present() else None


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOFLAGS="-trimpath -buildvcs=false")
    return env


def run_go(args: list[str], cwd: Path, label: str, progress: Progress) -> str:
    """Run a go command, reporting each package it compiles (go build -v prints them)."""
    started = time.monotonic()
    process = subprocess.Popen(
        ["go", *args], cwd=cwd, env=go_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    lines: list[str] = []
    for count, line in enumerate(process.stdout, start=1):
        lines.append(line)
        if count % 25 == 0:
            progress(f"{label}: {count} packages compiled, {time.monotonic() - started:.0f}s")
    if process.wait() != 0:
        tail = "".join(lines[-40:])
        raise BuildFailed(f"`go {' '.join(args[:2])}` for {label} failed:\n{tail}")
    return "".join(lines)


def copy_module(name: str, into: Path) -> Path:
    target = into / name
    shutil.copytree(GOMOD_DIR / name, target)
    for path in target.iterdir():
        path.chmod(0o644)
    return target


def _collect_kwok_stages(module_dir: Path, output: Path, progress: Progress) -> None:
    listing = subprocess.run(
        ["go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/kwok"],
        cwd=module_dir, env=go_env(), capture_output=True, text=True, check=True,
    )
    kwok_source = Path(listing.stdout.strip())
    documents = []
    for stage in _KWOK_STAGES:
        for path in sorted((kwok_source / "kustomize" / "stage" / stage).glob("*.yaml")):
            documents.append(path.read_text().strip())
    if not documents:
        raise BuildFailed(f"no kwok stage files found under {kwok_source}/kustomize/stage")
    output.write_text("\n---\n".join(documents) + "\n")
    progress(f"kwok stages: {len(documents)} collected")


def build_binaries(progress: Progress = print) -> Binaries:
    """Return the cached binaries, building the missing ones first (minutes on a cold machine)."""
    toolchain = go_version()
    key = cache_key(toolchain)
    binaries = Binaries(cache_root() / "bin" / key)
    if binaries.all_present():
        return binaries
    with locked(cache_root() / "bin" / f"{key}.lock"):
        if binaries.all_present():  # another process built it while we waited
            return binaries
        progress(
            f"Building the control plane from Go modules with {toolchain}: Kubernetes {KUBERNETES_VERSION}, "
            f"etcd {ETCD_VERSION}, kwok {KWOK_VERSION}. A cold build takes 20-40 minutes on 2 cores; "
            f"the result is cached in {binaries.directory}."
        )
        with tempfile.TemporaryDirectory(prefix="stretto-build-") as scratch_name:
            scratch = Path(scratch_name)
            out = scratch / "out"
            out.mkdir()
            kubernetes = copy_module("kubernetes", scratch)
            progress("downloading Go modules (Kubernetes) ...")
            run_go(["mod", "download"], kubernetes, "Kubernetes modules", progress)
            run_go(
                ["build", "-v", "-pgo=off", "-ldflags", _ldflags(), "-o", f"{out}/",
                 "k8s.io/kubernetes/cmd/kube-apiserver", "k8s.io/kubernetes/cmd/kube-controller-manager",
                 "k8s.io/kubernetes/cmd/kube-scheduler", "k8s.io/kubernetes/cmd/kubectl"],
                kubernetes, "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl", progress,
            )
            etcd = copy_module("etcd", scratch)
            run_go(["mod", "download"], etcd, "etcd modules", progress)
            run_go(["build", "-v", "-ldflags", "-s -w", "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"],
                    etcd, "etcd", progress)
            kwok = copy_module("kwok", scratch)
            run_go(["mod", "download"], kwok, "kwok modules", progress)
            run_go(["build", "-v", "-ldflags", "-s -w", "-o", str(out / "kwok"), "sigs.k8s.io/kwok/cmd/kwok"],
                    kwok, "kwok", progress)
            _collect_kwok_stages(kwok, out / "kwok-stages.yaml", progress)
            binaries.directory.parent.mkdir(parents=True, exist_ok=True)
            if binaries.directory.exists():
                shutil.rmtree(binaries.directory)
            shutil.move(str(out), binaries.directory)
        progress(f"control-plane binaries ready in {binaries.directory}")
    return binaries
