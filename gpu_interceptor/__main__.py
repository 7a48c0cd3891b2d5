"""``python -m stretto.gpu_interceptor node-daemon ...``: the daemon without the stretto CLI."""

from __future__ import annotations

import argparse
import sys

from .command import register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stretto.gpu_interceptor")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
