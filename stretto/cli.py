"""The `stretto` command: one entry point, one subcommand module per part."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes register(subparsers) and sets `func` on its parser.
_SUBCOMMAND_MODULES = (
    "stretto.devcluster.command",
    "stretto.devcluster.demo",
    "stretto.operator.command",
    "stretto.operator.cleanup",
    "stretto.scheduler.command",
    "stretto.sim.command",
    "stretto.gpu_interceptor.command",
    "stretto.devcluster.training_emulator",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stretto",
        description="Stretto: elastic deep-learning training on shared Kubernetes GPU clusters.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in _SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
