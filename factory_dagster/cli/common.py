"""What every `factory` command shares: loading the line, one-line errors, the console."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import NoReturn

import dagster as dg
from rich.console import Console
from rich.markup import escape

from factory_dagster.products import load_factory
from factory_dagster.products.kind import LINE_TAG
from factory_dagster.spec import FactoryRoot, FactorySpec, SpecError, find_root
from factory_dagster.storage.home import FactoryHome

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """End the command with one line (the message is printed as is: it may hold data)."""
    errors.print("[bold red]error:[/] " + escape(message), soft_wrap=True)
    raise SystemExit(code)


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        metavar="DIR",
        help="factory root holding factory.yaml and lines/ (default: $FACTORY_ROOT, else the "
        "nearest folder with factory.yaml)",
    )
    parser.add_argument(
        "--line",
        metavar="NAME",
        action="append",
        dest="lines",
        help="a product line to load (repeatable; default: $FACTORY_LINES, else factory.yaml's lines)",
    )
    parser.add_argument("--home", metavar="DIR", help="factory home (default: $FACTORY_HOME or ./.factory)")


def apply_common_options(args: argparse.Namespace) -> None:
    """Options become environment variables so that child processes (dbt, dagster dev) agree."""
    if getattr(args, "root", None):
        os.environ["FACTORY_ROOT"] = os.path.abspath(args.root)
    if getattr(args, "lines", None):
        os.environ["FACTORY_LINES"] = ",".join(args.lines)
    home = FactoryHome.resolve(getattr(args, "home", None))
    if home.root.exists() and not home.root.is_dir():
        fail(f"the factory home {home.root} is a file, not a folder")
    home.export()


@dataclass
class Loaded:
    root: FactoryRoot
    specs: list[FactorySpec]
    defs: dg.Definitions
    home: FactoryHome

    def line_of(self, section: str, name: str, option: str) -> FactorySpec:
        """The line declaring `name` in `section` (e.g. a model); a one-line error if none does."""
        for spec in self.specs:
            if name in getattr(spec, section):
                return spec
        names = sorted(n for spec in self.specs for n in getattr(spec, section))
        fail(f"unknown {option} {name!r} (known: {', '.join(names) or 'none'})")

    def line_of_key(self, key: dg.AssetKey) -> FactorySpec | None:
        """The line an asset belongs to (None for the governance reports)."""
        line = self.defs.resolve_asset_graph().get(key).tags.get(LINE_TAG)
        return next((spec for spec in self.specs if spec.name == line), None)


def load(args: argparse.Namespace, prepare: bool = False, check_suites: bool = False, force: bool = False) -> Loaded:
    """Load the lines (`--line`, else the configured ones) and build their definitions; spec
    errors end the command with one line each.

    `prepare`: compile the dbt project first (`dbt compile`) when its manifest is missing or older
    than a project file (always with `force`), and let GX parse every suite, as `factory prepare`
    does; `check_suites`: only the latter (definitions loads do neither).
    """
    from factory_dagster.factory import build_definitions, build_gates
    from factory_dagster.gates.suites import check_with_gx
    from factory_dagster.products.dbt_model import prepare_dbt_project
    from factory_dagster.spec.dbt_manifest import is_current

    home = FactoryHome.resolve()
    try:
        root = find_root()
        project = root.dbt_project_dir
        if prepare and (project / "dbt_project.yml").is_file() and (force or not is_current(project)):
            try:
                prepare_dbt_project(project)
            except Exception as exc:  # dbt's errors (a model that does not compile, ...) in one line
                fail(f"cannot prepare the dbt project: {first_line(exc)}")
        specs = load_factory(root, getattr(args, "lines", None))
    except SpecError as exc:
        fail(str(exc))
    try:
        defs = build_definitions(specs=specs, home=home.root)
        if prepare or check_suites:
            for spec in specs:
                for gate in build_gates(spec).values():
                    check_with_gx(gate.suite, home.gx_parsed)
    except SpecError as exc:  # e.g. a GX suite that does not fit its asset
        fail(str(exc))
    return Loaded(root, specs, defs, home)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def exit_code(success: bool) -> int:
    return 0 if success else 1
