"""`factory rollback`: serve an earlier, hash-verified version of a model or of a serving slot."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, fail, load
from factory_dagster.execution.instance import factory_instance
from factory_dagster.products.model import rollback
from factory_dagster.products.slot import rollback_slot
from factory_dagster.storage.artifacts import ArtifactIntegrityError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("rollback", help="serve an earlier version of a model or a serving slot")
    parser.add_argument("model", help="a model, or a serving slot")
    parser.add_argument(
        "--to",
        metavar="VERSION",
        help="the version to serve (default: the one before the current); for a slot, one that served it before",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    line = next((spec for spec in loaded.specs if args.model in spec.slots), None)
    if line is None:
        loaded.line_of("models", args.model, "model")
    try:
        if line is not None:
            new, old = rollback_slot(line, loaded.home, factory_instance(loaded.home), args.model, args.to)
            served, previous = f"{new.model}@{new.version}", f"{old.model}@{old.version}"
        else:
            new_version, old_version = rollback(loaded.home, factory_instance(loaded.home), args.model, args.to)
            served, previous = new_version.version, old_version.version
    except (LookupError, ArtifactIntegrityError) as exc:
        fail(str(exc).strip("'\""))
    console.print(
        f"{args.model}: now serving {served} (was {previous}); the next scoring run uses it",
        markup=False,
        soft_wrap=True,
    )
    return 0
