"""`factory backfill`: one run per line over a partition range, with a summary per partition."""

from __future__ import annotations

import argparse
import sys

import dagster as dg
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from factory_dagster.cli.build import LineRun, add_range_options, plan, run_with_progress
from factory_dagster.cli.common import Loaded, errors, exit_code, load
from factory_dagster.cli.summary import print_summary
from factory_dagster.execution.instance import factory_instance
from factory_dagster.execution.report import RunReport
from factory_dagster.execution.runner import built_in, missing_prerequisites


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "backfill", help="materialize a partition range (one run) with a per-partition summary"
    )
    add_range_options(parser, required=True)
    parser.add_argument(
        "--select",
        metavar="SELECTION",
        help="Dagster asset selection, narrowed to its partitioned assets (default: all of them)",
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="skip preparing before loading (dbt compile when a dbt file changed, GX parse of the suites)",
    )
    parser.add_argument("--verbose", action="store_true", help="stream Dagster and dbt logs")
    return parser


def print_partitions(console: Console, report: RunReport) -> None:
    """Rows written per partition and asset; a partition missing from an asset shows why."""
    counted = {key: outcome.partition_rows() for key, outcome in report.assets.items() if outcome.partition_rows()}
    if not counted:
        return
    days = sorted({day for rows in counted.values() for day in rows})
    table = Table(title="Rows per partition", title_justify="left")
    table.add_column("partition", no_wrap=True, min_width=10)
    for key in counted:
        table.add_column(key, justify="right")
    for day in days:
        table.add_row(day, *(f"{counted[key][day]:,}" if day in counted[key] else "-" for key in counted))
    console.print(table)


def _names(keys: list[dg.AssetKey]) -> str:
    return ", ".join(key.to_user_string() for key in keys)


def build_prerequisites(loaded: Loaded, line_run: LineRun, verbose: bool, console: Console) -> bool:
    """Build, in one run before the range, the unpartitioned upstreams the range reads that this
    home never built (from nothing, the partitions' dbt models would read missing tables); leave
    out of the range what needs one that only partitions can make, saying what to build first.
    False when the range cannot be complete."""
    built = built_in(loaded.home, loaded.specs, factory_instance(loaded.home))
    prerequisites = missing_prerequisites(loaded.defs, line_run.keys, built)
    complete = True
    for blocked, needing in prerequisites.needing.items():
        errors.print(
            f"[yellow]not backfilled: {escape(_names(needing))}: {'they need' if len(needing) > 1 else 'it needs'} "
            f"{escape(blocked.to_user_string())}, never built in this home and made from partitions; "
            f"build it first (factory build --select '+{blocked.to_user_string()}')[/]",
            soft_wrap=True,
        )
        complete = False
    line_run.keys = [key for key in line_run.keys if key not in prerequisites.left_out]
    if prerequisites.buildable and line_run.keys:
        console.print(f"First, once: {_names(prerequisites.buildable)} (never built in this home)")
        report = run_with_progress(loaded, LineRun(line_run.spec, prerequisites.buildable, {}), verbose, console)
        if not report.success:
            if line_run.spec is not None:
                print_summary(console, line_run.spec, report)
            line_run.keys = []
            return False
    return complete


def run(args: argparse.Namespace) -> int:
    loaded = load(args, prepare=not args.no_prepare)
    runs = plan(loaded, args.select, args.start, args.end, partitioned_only=True)
    console = Console(file=sys.stdout, highlight=False)
    success = True
    for line_run in runs:
        success = build_prerequisites(loaded, line_run, args.verbose, console) and success
        if not line_run.keys:
            continue
        report = run_with_progress(loaded, line_run, args.verbose, console)
        print_partitions(console, report)
        if line_run.spec is not None:
            print_summary(console, line_run.spec, report)
        success = success and report.success
    return exit_code(success)
