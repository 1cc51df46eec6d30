"""`factory worker`: a Celery worker executing the production profile's steps."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import active_profile


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "worker", help="run a Celery worker for the production profile's steps (checks broker and databases first)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="steps this worker runs at once (default: 1)"
    )
    parser.add_argument("--name", help="worker name (default: Celery's, from the host name)")
    return parser


def run(args: argparse.Namespace) -> int:
    from factory_dagster.execution.worker import check_services, run_worker  # lazy: Celery

    profile = active_profile()
    check_services(profile)
    ensure_dagster_home(FactoryHome.resolve(), profile)
    console.print(f"worker for {profile.describe()}", soft_wrap=True)
    run_worker(profile, max(1, args.concurrency), args.name)
    return 0
