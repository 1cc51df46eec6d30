"""`factory rollback`: serve an earlier, hash-verified version of a model."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, fail, load
from factory_dagster.execution.instance import factory_instance
from factory_dagster.products.model import rollback
from factory_dagster.storage.artifacts import ArtifactIntegrityError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("rollback", help="serve an earlier version of a model")
    parser.add_argument("model")
    parser.add_argument("--to", metavar="VERSION", help="the version to serve (default: the one before the current)")
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    loaded.line_of("models", args.model, "model")
    try:
        served, previous = rollback(loaded.home, factory_instance(loaded.home), args.model, args.to)
    except (LookupError, ArtifactIntegrityError) as exc:
        fail(str(exc).strip("'\""))
    console.print(
        f"{args.model}: now serving {served.version} (was {previous.version}); the next scoring run uses it",
        markup=False,
    )
    return 0
