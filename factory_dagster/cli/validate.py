"""`factory validate`: check the spec and build the definitions, errors one per line."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console, load
from factory_dagster.spec.errors import display_path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser("validate", help="validate the specs, the definitions and every GX suite")


def run(args: argparse.Namespace) -> int:
    loaded = load(args, check_suites=True)
    for spec in loaded.specs:
        # Drift alone is debt (TD21D), not an error: the SQL is what runs, and readers are checked
        # against it; a reader of a documented column the SQL lacks already failed to load.
        for model in spec.dbt_models.values():
            if (drift := model.drift(spec.root.dbt_project_dir)) is not None:
                console.print(f"warning: {drift}", markup=False, soft_wrap=True)
        console.print(
            f"ok: line {spec.name} ({display_path(spec.spec_dir)}): {len(spec.sources)} sources, "
            f"{len(spec.dbt_models)} dbt models, {len(spec.feature_sets)} feature sets, "
            f"{len(spec.models)} models, {len(spec.predictions)} predictions",
            markup=False,
            soft_wrap=True,
        )
    assets = len(loaded.defs.resolve_asset_graph().materializable_asset_keys)
    console.print(f"ok: {len(loaded.specs)} line(s), {assets} assets in one code location", soft_wrap=True)
    return 0
