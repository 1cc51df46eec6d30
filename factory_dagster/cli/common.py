"""What every `factory` command shares: loading the line, one-line errors, the console."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import NoReturn

import dagster as dg
from rich.console import Console
from rich.markup import escape

from factory_dagster.spec import FactorySpec, SpecError, load_line
from factory_dagster.storage.home import FactoryHome

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)



def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one line (the message is printed as is: it may hold data)."""
    errors.print("[bold red]error:[/] " + escape(message), soft_wrap=True)
    raise SystemExit(code)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--specs", metavar="DIR",
                        help="product line spec folder (default: $FACTORY_SPECS or the flights line)")
    parser.add_argument("--home", metavar="DIR",
                        help="factory home (default: $FACTORY_HOME or ./.factory)")


def apply_common_options(args: argparse.Namespace) -> None:
    """Options become environment variables so that child processes (dbt, dagster dev) agree."""
    if getattr(args, "specs", None):
        os.environ["FACTORY_SPECS"] = os.path.abspath(args.specs)
    home = FactoryHome.resolve(getattr(args, "home", None))
    if home.root.exists() and not home.root.is_dir():
        fail(f"the factory home {home.root} is a file, not a folder")
    home.export()


@dataclass
class Loaded:
    spec: FactorySpec
    defs: dg.Definitions
    home: FactoryHome


def load(prepare: bool = False) -> Loaded:
    """Load the line and build its definitions; spec errors end the command with one line each."""
    from factory_dagster.factory import build_definitions
    from factory_dagster.products.dbt import prepare_dbt_project

    def force_prepare(project_dir):
        prepare_dbt_project(project_dir, force=True)

    try:
        spec = load_line(prepare_dbt=force_prepare if prepare else None)
    except SpecError as exc:
        fail(str(exc))
    except Exception as exc:  # dbt parse errors surface here when preparing
        fail(f"cannot prepare the dbt project: {first_line(exc)}")
    home = FactoryHome.resolve()
    try:
        defs = build_definitions(spec=spec, home=home.root)
    except SpecError as exc:  # e.g. a GX suite that does not fit its asset
        fail(str(exc))
    return Loaded(spec, defs, home)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def exit_code(success: bool) -> int:
    return 0 if success else 1


