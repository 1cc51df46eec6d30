"""`factory build`: materialize the graph (or a selection) in-process, then summarize."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from factory_dagster.cli.common import exit_code, fail, load
from factory_dagster.cli.summary import print_summary
from factory_dagster.execution.instance import factory_instance
from factory_dagster.execution.runner import execute, resolve_selection


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("build", help="materialize the whole graph (or --select) in-process")
    parser.add_argument("--select", metavar="SELECTION",
                        help="Dagster asset selection, e.g. '+fct_flights' or 'group:marts' (default: all)")
    parser.add_argument("--no-prepare", action="store_true", help="skip `dbt parse` before loading")
    parser.add_argument("--verbose", action="store_true", help="stream Dagster and dbt logs")
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(prepare=not args.no_prepare)
    try:
        keys = resolve_selection(loaded.defs, args.select)
    except Exception as exc:
        fail(f"invalid selection {args.select!r}: {exc}")
    if not keys:
        fail(f"the selection {args.select!r} matches no asset")
    instance = factory_instance(loaded.home)
    # Bound now: while the run executes, sys.stdout goes to the run's log file.
    console = Console(file=sys.stdout, highlight=False)
    console.print(f"Building {len(keys)} assets of line [bold]{loaded.spec.line.name}[/] into {loaded.home.root}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=args.verbose) as progress:
        task = progress.add_task("starting", total=len(keys))

        def on_progress(done: int, current: str) -> None:
            progress.update(task, completed=done, description=f"running {current}")

        report = execute(loaded.defs, instance, keys, on_progress=on_progress,
                         log_dir=None if args.verbose else loaded.home.logs)
    print_summary(console, loaded.spec, report)
    return exit_code(report.success)
