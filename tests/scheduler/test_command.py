import argparse

import pytest

from stretto.scheduler import command
from stretto.scheduler.kube_api import KubeAPIError


def parser():
    p = argparse.ArgumentParser(prog="stretto")
    command.register(p.add_subparsers(dest="command"))
    return p


@pytest.mark.parametrize(
    ("argv", "want"),
    [
        (["extender"], {"kubeconfig": None, "host": "127.0.0.1", "port": 8888}),
        (["extender", "--kubeconfig", "/tmp/k", "--host", "0.0.0.0", "--port", "18080"],
         {"kubeconfig": "/tmp/k", "host": "0.0.0.0", "port": 18080}),
    ],
)
def test_register_adds_extender_subcommand(argv, want):
    args = parser().parse_args(argv)
    assert {k: getattr(args, k) for k in want} == want and args.func is command.run


def test_bad_port_is_refused():
    with pytest.raises(SystemExit):
        parser().parse_args(["extender", "--port", "http"])


@pytest.mark.parametrize(("status", "definite"), [(409, True), (404, True), (500, False), (0, False)])
def test_api_error_definiteness(status, definite):
    assert KubeAPIError(status, "x").definite is definite
