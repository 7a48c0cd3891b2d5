"""`stretto operator`: run the kopf operator that owns TrainingJobs."""

from __future__ import annotations

import argparse
import logging
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("operator", help="run the TrainingJob operator (kopf)")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig (default $KUBECONFIG or in-cluster)")
    parser.add_argument("--namespace", action="append", default=[],
                        help="watch only this namespace (repeatable; default: all namespaces)")
    parser.add_argument("--leader-election", default=None, metavar="LEASE",
                        help="share one round loop between replicas through this Lease (default: a single operator)")
    parser.add_argument("--lease-seconds", type=int, default=None,
                        help="how long the Lease outlives its holder's last renewal (default 30)")
    parser.add_argument("--liveness", default=None, help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    parser.add_argument("--progress-host", default="0.0.0.0", help="address of the progress server")
    parser.add_argument("--progress-port", type=int, default=8081, help="port of the progress server (0: any)")
    parser.add_argument("--progress-url", default=None,
                        help="URL workers report progress to (default http://stretto-operator.<ns>:<port>)")
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=run)


def configure_logging(*, verbose: bool) -> None:
    """One handler on the root logger, in Stretto's format; kopf's loggers propagate to it, so each
    line is printed once (kopf.configure would add a second handler of its own)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, force=True,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    os.environ["STRETTO_PROGRESS_HOST"] = args.progress_host
    os.environ["STRETTO_PROGRESS_PORT"] = str(args.progress_port)
    if args.leader_election:
        os.environ["STRETTO_LEADER_ELECTION"] = args.leader_election
    if args.lease_seconds is not None:
        os.environ["STRETTO_LEASE_SECONDS"] = str(args.lease_seconds)
    if args.namespace:  # the cache's lists follow kopf's watches
        os.environ["STRETTO_WATCH_NAMESPACES"] = ",".join(args.namespace)
    if args.progress_url:
        os.environ["STRETTO_PROGRESS_URL"] = args.progress_url
    import kopf

    from stretto.operator import handlers, login  # noqa: F401  (registers the handlers)

    configure_logging(verbose=args.verbose)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,  # handlers are idempotent and change nothing without the leader's plans
        liveness_endpoint=args.liveness,
    )
    return 0
