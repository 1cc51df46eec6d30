"""`factory prepare`: write the dbt manifest (`dbt parse`) that definitions load."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, load


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser("prepare", help="parse the dbt project (writes target/manifest.json)")


def run(args: argparse.Namespace) -> int:
    loaded = load(prepare=True)
    where = loaded.spec.dbt_project_dir
    console.print(f"prepared {where / 'target' / 'manifest.json'}" if where else "no dbt project in this line")
    return 0
