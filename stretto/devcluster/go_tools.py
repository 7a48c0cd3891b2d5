"""Build the chart tests' tools (helm, kind-config-check) from pinned Go modules, once, and cache them.

Each tool has its own wrapper module in `gomod/` and its own cache key, so pinning a new helm never
rebuilds the control plane (`binaries.py`) and the reverse. A tool is built the first time a test or
command asks for it, into a temporary directory renamed into place under a file lock, like the
control plane.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stretto.devcluster.binaries import (
    GOMOD_DIR,
    Progress,
    cache_root,
    copy_module,
    go_version,
    locked,
    run_go,
)

HELM_VERSION = "v4.3.2"


@dataclass(frozen=True)
class GoTool:
    name: str       # the binary, and its wrapper module under gomod/
    version: str
    package: str    # what `go build` builds, from inside the wrapper module
    ldflags: str

    def module_files(self) -> list[Path]:
        return sorted(p for p in (GOMOD_DIR / self.name).iterdir() if p.is_file())

    def cache_key(self, toolchain: str) -> str:
        digest = hashlib.sha256()
        for part in (toolchain, platform.system(), platform.machine(), self.package, self.ldflags):
            digest.update(part.encode() + b"\0")
        for path in self.module_files():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return f"{self.name}-{self.version}-{digest.hexdigest()[:12]}"


HELM = GoTool(
    name="helm", version=HELM_VERSION, package="helm.sh/helm/v4/cmd/helm",
    ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION} "
            "-X helm.sh/helm/v4/internal/version.gitTreeState=clean",
)
KIND_CONFIG_CHECK = GoTool(name="kind-config-check", version="kind-v0.33.0", package=".", ldflags="-s -w")
CHART_TOOLS = (HELM, KIND_CONFIG_CHECK)


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def build_tool(tool: GoTool, progress: Progress = print) -> Path:
    """The cached binary of `tool`, built first when missing (helm: a few minutes on 2 cores)."""
    toolchain = go_version()
    directory = cache_root() / "tools" / tool.cache_key(toolchain)
    binary = directory / tool.name
    if _executable(binary):
        return binary
    with locked(directory.with_name(f"{directory.name}.lock")):
        if _executable(binary):  # built by another process while we waited
            return binary
        progress(f"Building {tool.name} {tool.version} from its Go module with {toolchain}; "
                 f"the result is cached in {directory}.")
        with tempfile.TemporaryDirectory(prefix=f"stretto-{tool.name}-") as scratch_name:
            scratch = Path(scratch_name)
            module = copy_module(tool.name, scratch)
            out = scratch / "out"
            out.mkdir()
            run_go(["mod", "download"], module, f"{tool.name} modules", progress)
            run_go(["build", "-v", "-ldflags", tool.ldflags, "-o", str(out / tool.name), tool.package],
                   module, tool.name, progress)
            if directory.exists():
                shutil.rmtree(directory)
            shutil.move(str(out), directory)
        progress(f"{tool.name} ready: {binary}")
    return binary
