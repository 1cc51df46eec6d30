"""The `factory` command: thin wrappers over the same definitions the Dagster UI loads."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

import dagster as dg

from factory_dagster.cli import (
    backfill,
    build,
    debt,
    gates,
    lineage,
    listing,
    models,
    prepare,
    profile,
    replay,
    rollback,
    ui,
    validate,
    worker,
)
from factory_dagster.cli.common import add_common_options, apply_common_options, fail
from factory_dagster.storage.profile import ProfileError

COMMANDS = {
    "build": build,
    "backfill": backfill,
    "replay": replay,
    "list": listing,
    "gates": gates,
    "debt": debt,
    "lineage": lineage,
    "rollback": rollback,
    "models": models,
    "ui": ui,
    "prepare": prepare,
    "validate": validate,
    "profile": profile,
    "worker": worker,
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="factory", description="AI Factory: spec-driven data and ML products on Dagster."
    )
    subparsers = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS.values():
        add_common_options(module.register(subparsers))
    return root


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
    # Beta features (backfill policies, partition mappings, selections) are used knowingly.
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    args = parser().parse_args(argv)
    apply_common_options(args)
    try:
        return COMMANDS[args.command].run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ProfileError as exc:  # a deployment profile misconfigured, or a service it names down
        fail(str(exc))
    except OSError as exc:  # a path that cannot be written or read: the user's to fix
        fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


if __name__ == "__main__":
    raise SystemExit(main())
