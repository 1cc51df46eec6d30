"""`factory profile`: which deployment profile `factory` runs and against what (no secret shown)."""

from __future__ import annotations

import argparse

from factory_dagster.cli.common import console
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import active_profile


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "profile", help="show the deployment profile (FACTORY_PROFILE) and what it runs against"
    )


def run(args: argparse.Namespace) -> int:
    profile = active_profile()
    home = FactoryHome.resolve()
    dagster_home = ensure_dagster_home(home, profile)
    console.print(profile.describe(), soft_wrap=True)
    console.print(f"factory home {home.root}; Dagster instance config {dagster_home / 'dagster.yaml'}", soft_wrap=True)
    return 0
