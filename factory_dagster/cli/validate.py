"""`factory validate`: check the spec and build the definitions, errors one per line."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, load


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser("validate", help="validate the spec and definitions")


def run(args: argparse.Namespace) -> int:
    loaded = load()
    spec = loaded.spec
    assets = len(loaded.defs.resolve_asset_graph().materializable_asset_keys)
    console.print(
        f"ok: line {spec.line.name} ({spec.spec_dir}): {len(spec.sources)} sources, "
        f"{len(spec.dbt_models)} dbt models, {len(spec.feature_sets)} feature sets, "
        f"{len(spec.models)} models, {len(spec.predictions)} predictions; {assets} assets"
    )
    return 0
