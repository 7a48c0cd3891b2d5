"""The Dockerfile, checked by what runs without a container engine.

Its build steps run here as written (`make -C gpu_interceptor/native`, `pip wheel --no-deps` with
build isolation, as `docker build` would), the wheel is installed into a clean virtual environment
(its dependencies taken from the development environment's site-packages rather than downloaded
again), and what the chart runs in the image must resolve there: the `stretto` entry point with every
subcommand the chart's containers name, the shim and mock NVML paths, the user, `python` and `sh`.
Not verified here: the base image itself, the apt packages, and the image running on a node.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.chart.chart_tools import REPO, Tools, pod_spec

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    steps = [line.split(" ", 1) for line in lines if line and not line.startswith("#")]
    return [(step[0].upper(), step[1]) for step in steps]


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Dockerfile's build steps, then its install step into a clean virtual environment."""
    runs = [argument for keyword, argument in instructions() if keyword == "RUN"]
    assert "make -C gpu_interceptor/native && pip wheel --no-deps -w /wheels ." in runs
    assert "pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels" in runs
    root = tmp_path_factory.mktemp("image")
    subprocess.run(["make", "-C", str(REPO / "gpu_interceptor" / "native")], check=True, capture_output=True)
    wheels = root / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels),
                            str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("stretto-*.whl")
    environment = root / "venv"
    venv.EnvBuilder(with_pip=False).create(environment)
    python = environment / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Dependencies from the development environment; its editable Stretto is not on this path.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                              "--no-deps", "--no-index", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    return environment


def _in_image(image_venv: Path, code: str, *args: str) -> object:
    out = subprocess.run([str(image_venv / "bin" / "python"), "-c", code, *args], capture_output=True, text=True,
                         check=True, cwd="/")
    return json.loads(out.stdout)


def test_the_wheel_is_what_runs_and_its_requirements_are_met(image_venv: Path):
    found = _in_image(image_venv, "import importlib.metadata as m, json, stretto; "
                                  "print(json.dumps([stretto.__file__, m.distribution('stretto').requires]))")
    assert isinstance(found, list)
    location, requires = found
    assert location.startswith(str(image_venv)), f"stretto imported from {location}, not from the wheel"
    needed = [r for r in map(Requirement, requires) if r.marker is None or r.marker.evaluate({"extra": ""})]
    versions = _in_image(image_venv, "import importlib.metadata as m, json, sys; "
                                     "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))",
                         *(r.name for r in needed))
    assert isinstance(versions, dict)
    for requirement in needed:
        assert requirement.specifier.contains(versions[requirement.name], prereleases=True), requirement


def test_every_command_the_chart_runs_resolves_in_the_image(image_venv: Path, tools: Tools):
    keywords = dict(instructions())
    assert keywords["ENTRYPOINT"] == '["stretto"]'
    objects = tools.render("cleanup.deleteTrainingJobsOnUninstall=true")
    commands = set()
    for workload in (o for o in objects if o["kind"] in ("Deployment", "DaemonSet", "Job")):
        for container in pod_spec(workload)["containers"]:
            if "args" in container and "command" not in container:  # the image's entry point
                commands.add(container["args"][0])
    assert commands == {"operator", "extender", "node-daemon", "cleanup"}
    for command in sorted(commands):
        result = subprocess.run([str(image_venv / "bin" / "stretto"), command, "--help"], capture_output=True,
                                text=True, cwd="/")
        assert result.returncode == 0, (command, result.stderr)
        assert "--kubeconfig" in result.stdout, command


def test_the_files_and_user_the_chart_expects_are_in_the_image(tools: Tools):
    steps = instructions()
    assert ("FROM", "python:3.11-slim") in steps  # python (the extender's probe) and sh (the shim's copy)
    assert ("COPY", "--from=build /src/gpu_interceptor/native/build/ /opt/stretto/lib/") in steps
    build = REPO / "gpu_interceptor" / "native" / "build"
    assert (build / "libstretto-cuda.so").is_file() and (build / "fake" / "libnvidia-ml.so.1").is_file()
    objects = tools.render("nodeDaemon.mockNvml=true")
    daemon = pod_spec(next(o for o in objects if o["kind"] == "DaemonSet"))
    assert "/opt/stretto/lib/libstretto-cuda.so" in daemon["initContainers"][0]["command"][-1]
    env = {e["name"]: e.get("value") for e in daemon["containers"][0]["env"]}
    assert env["LD_LIBRARY_PATH"] == "/opt/stretto/lib/fake"
    user = dict(steps)["USER"]
    operator = pod_spec(next(o for o in objects if o["kind"] == "Deployment"))
    assert user == f"{operator['securityContext']['runAsUser']}:{operator['securityContext']['runAsGroup']}"
