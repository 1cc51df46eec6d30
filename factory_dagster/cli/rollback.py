"""`factory rollback`: serve an earlier, hash-verified version of a model."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, fail, load
from factory_dagster.products.models import model_registry
from factory_dagster.storage.artifacts import ArtifactIntegrityError


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("rollback", help="serve an earlier version of a model")
    parser.add_argument("model")
    parser.add_argument("--to", metavar="VERSION", help="the version to serve (default: the one before the current)")
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load()
    if args.model not in loaded.spec.models:
        fail(f"unknown model {args.model!r} (known: {', '.join(sorted(loaded.spec.models)) or 'none'})")
    registry = model_registry(loaded.home, args.model)
    current = registry.current()
    versions = sorted(registry.versions(), key=lambda v: v.created_at)
    if current is None or not versions:
        fail(f"{args.model} has no served version yet")
    if args.to:
        target = next((v for v in versions if v.version == args.to), None)
        if target is None:
            fail(f"{args.model} has no version {args.to} (versions: {', '.join(v.version for v in versions)})")
    else:
        earlier = [v for v in versions if v.created_at < current.created_at]
        if not earlier:
            fail(f"{args.model} has no version older than the served {current.version}")
        target = earlier[-1]
    try:
        registry.load(target.version)  # refuses a tampered artifact before it is served
    except ArtifactIntegrityError as exc:
        fail(str(exc))
    registry.promote(target.version)
    console.print(f"{args.model}: now serving {target.version} (was {current.version}); "
                  "the next scoring run uses it")
    return 0
