"""`factory build`: materialize the graph (or a selection, or a partition range) in-process."""

from __future__ import annotations

import argparse
import sys

import dagster as dg
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from factory_dagster.cli.common import Loaded, exit_code, fail, load
from factory_dagster.cli.summary import print_summary
from factory_dagster.execution.instance import factory_instance
from factory_dagster.execution.report import RunReport
from factory_dagster.execution.runner import (
    SelectionError,
    execute,
    partition_tags,
    resolve_selection,
)
from factory_dagster.lineage.openlineage import emit_run
from factory_dagster.products.dbt import FULL_REFRESH_TAG


def add_range_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--start", metavar="DAY", required=required, help="first partition (e.g. 2013-01-01)")
    parser.add_argument("--end", metavar="DAY", required=required, help="last partition, inclusive")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("build", help="materialize the whole graph (or --select) in-process")
    parser.add_argument("--select", metavar="SELECTION",
                        help="Dagster asset selection, e.g. '+fct_flights' or 'group:marts' (default: all)")
    add_range_options(parser, required=False)
    parser.add_argument("--full-refresh", action="store_true",
                        help="rebuild the dbt models from scratch (after their columns changed)")
    parser.add_argument("--no-prepare", action="store_true", help="skip `dbt parse` before loading")
    parser.add_argument("--verbose", action="store_true", help="stream Dagster and dbt logs")
    return parser


def plan(loaded: Loaded, select: str | None, start: str | None, end: str | None,
         partitioned_only: bool = False, full_refresh: bool = False) -> tuple[list[dg.AssetKey], dict[str, str]]:
    """The asset keys and partition range tags of one run; user errors end the command."""
    if full_refresh and (start or end):
        fail("--full-refresh rebuilds dbt models from scratch, over every partition: drop --start/--end")
    try:
        keys = resolve_selection(loaded.defs, select)
    except Exception as exc:  # dagster raises several types for a selection it cannot parse
        fail(f"invalid selection {select!r}: {exc}")
    if partitioned_only:
        graph = loaded.defs.resolve_asset_graph()
        keys = [k for k in keys if graph.get(k).partitions_def is not None]
    if not keys:
        fail(f"the selection {select!r} matches no {'partitioned ' if partitioned_only else ''}asset")
    try:
        tags = partition_tags(loaded.defs, keys, start, end)
    except SelectionError as exc:
        fail(str(exc))
    return keys, {**tags, FULL_REFRESH_TAG: "true"} if full_refresh else tags


def run_with_progress(loaded: Loaded, keys: list[dg.AssetKey], tags: dict[str, str], verbose: bool,
                      console: Console) -> RunReport:
    instance = factory_instance(loaded.home)
    span = f", partitions {tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}" \
        if tags else ""
    console.print(f"Building {len(keys)} assets of line [bold]{loaded.spec.line.name}[/]{span} into {loaded.home.root}")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True, disable=verbose) as progress:
        task = progress.add_task("starting", total=len(keys))

        def on_progress(done: int, current: str) -> None:
            progress.update(task, completed=done, description=f"running {current}")

        report = execute(loaded.defs, instance, keys, tags=tags, on_progress=on_progress,
                         log_dir=None if verbose else loaded.home.logs)
    record_lineage(loaded, instance, report.run_id, console)
    return report


def record_lineage(loaded: Loaded, instance: dg.DagsterInstance, run_id: str, console: Console) -> None:
    """Emit the run's OpenLineage events; a lineage backend that is down never fails a build."""
    config = loaded.spec.line.openlineage
    if not config.enabled:
        return
    try:
        sent = emit_run(loaded.spec, loaded.defs, loaded.home, instance, run_id)
    except OSError as exc:
        console.print(f"[yellow]OpenLineage events not sent: {exc}[/]")
        return
    if sent:
        where = [str(loaded.home.root / config.file)] if config.file else []
        console.print(f"OpenLineage: {sent} events → {', '.join(where + ([config.url] if config.url else []))}")


def run(args: argparse.Namespace) -> int:
    loaded = load(prepare=not args.no_prepare)
    keys, tags = plan(loaded, args.select, args.start, args.end, full_refresh=args.full_refresh)
    # Bound now: while the run executes, sys.stdout goes to the run's log file.
    console = Console(file=sys.stdout, highlight=False)
    report = run_with_progress(loaded, keys, tags, args.verbose, console)
    print_summary(console, loaded.spec, report)
    return exit_code(report.success)
