"""`factory prepare`: write the dbt manifest (`dbt compile`: with every model's SQL) that definitions load."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, load


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "prepare", help="compile the dbt project (writes target/manifest.json) and let GX parse every suite"
    )


def run(args: argparse.Namespace) -> int:
    loaded = load(args, prepare=True, force=True)
    where = loaded.root.dbt_project_dir
    console.print(
        f"prepared {where / 'target' / 'manifest.json'}"
        if (where / "dbt_project.yml").is_file()
        else f"no dbt project at {where}"
    )
    return 0
