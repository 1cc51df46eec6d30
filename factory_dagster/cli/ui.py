"""`factory ui`: start `dagster dev -w workspace.yaml` on the factory's instance."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from factory_dagster.cli.common import fail
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.storage.home import FactoryHome


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("ui", help="start the Dagster UI and daemon (dagster dev)")
    parser.add_argument("--workspace", default="workspace.yaml", help="workspace file (default: workspace.yaml)")
    parser.add_argument("-p", "--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    return parser


def command(args: argparse.Namespace) -> list[str]:
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    target = (
        ["-w", args.workspace] if Path(args.workspace).exists() else ["-m", "factory_dagster.definitions", "-a", "defs"]
    )
    return [dagster, "dev", *target, "-p", str(args.port), "-h", args.host]


def run(args: argparse.Namespace) -> int:
    dagster_home = ensure_dagster_home(FactoryHome.resolve())
    argv = command(args)
    if not Path(argv[0]).exists():
        fail("the `dagster` command is not installed in this environment")
    print(f"DAGSTER_HOME={dagster_home}\n$ {' '.join(argv)}", flush=True)
    os.execv(argv[0], argv)
    return 0  # not reached
