"""`factory build`: materialize the graph (or a selection, or a partition range) in-process."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import dagster as dg
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from factory_dagster.automation.partitions import RANGE_END, RANGE_START
from factory_dagster.cli.common import Loaded, errors, exit_code, fail, load
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
from factory_dagster.products.dbt_model import FULL_REFRESH_TAG
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.profile import active_profile


def add_range_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--start", metavar="DAY", required=required, help="first partition (e.g. 2013-01-01)")
    parser.add_argument("--end", metavar="DAY", required=required, help="last partition, inclusive")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("build", help="materialize the whole graph (or --select) in-process")
    parser.add_argument(
        "--select",
        metavar="SELECTION",
        help="Dagster asset selection, e.g. '+fct_flights' or 'group:marts' (default: all)",
    )
    add_range_options(parser, required=False)
    parser.add_argument(
        "--full-refresh", action="store_true", help="rebuild the dbt models from scratch (after their columns changed)"
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="skip preparing before loading (dbt compile when a dbt file changed, GX parse of the suites)",
    )
    parser.add_argument("--verbose", action="store_true", help="stream Dagster and dbt logs")
    return parser


@dataclass
class LineRun:
    """One run of a `factory build`: the selected assets of one line (None: the governance reports)."""

    spec: FactorySpec | None
    keys: list[dg.AssetKey]
    tags: dict[str, str]

    @property
    def label(self) -> str:
        return f"line [bold]{self.spec.name}[/]" if self.spec else "the governance reports"


def plan(
    loaded: Loaded,
    select: str | None,
    start: str | None,
    end: str | None,
    partitioned_only: bool = False,
    full_refresh: bool = False,
) -> list[LineRun]:
    """One run per line the selection touches, each with its partition range tags; user errors
    end the command. Lines run apart: each has its own partitioning."""
    if full_refresh and (start or end):
        fail("--full-refresh rebuilds dbt models from scratch, over every partition: drop --start/--end")
    try:
        keys = resolve_selection(loaded.defs, select)
    except Exception as exc:  # dagster raises several types for a selection it cannot parse
        fail(f"invalid selection {select!r}: {exc}")
    graph = loaded.defs.resolve_asset_graph()
    if partitioned_only:
        keys = [k for k in keys if graph.get(k).partitions_def is not None]
    if not keys:
        fail(f"the selection {select!r} matches no {'partitioned ' if partitioned_only else ''}asset")
    by_line: dict[str | None, list[dg.AssetKey]] = {}
    for key in keys:
        spec = loaded.line_of_key(key)
        by_line.setdefault(spec.name if spec else None, []).append(key)
    specs = {spec.name: spec for spec in loaded.specs}
    runs, problems = [], []
    for line, line_keys in sorted(by_line.items(), key=lambda item: (item[0] is None, item[0] or "")):
        try:
            tags = partition_tags(loaded.defs, line_keys, start, end)
        except SelectionError as exc:
            problems.append(f"line {line}: {exc}" if line and len(by_line) > 1 else str(exc))
            continue
        runs.append(
            LineRun(
                specs.get(line) if line else None,
                line_keys,
                {**tags, FULL_REFRESH_TAG: "true"} if full_refresh else tags,
            )
        )
    if problems and (not runs or not (start or end)):
        fail("; ".join(problems))
    for problem in problems:  # a range given to several lines: those without partitions sit it out
        errors.print(f"[yellow]skipped {escape(problem)}[/]")
    return runs


def run_with_progress(loaded: Loaded, run: LineRun, verbose: bool, console: Console) -> RunReport:
    profile = active_profile()
    instance = factory_instance(loaded.home)
    tags = run.tags
    span = f", partitions {tags[RANGE_START]}..{tags[RANGE_END]}" if RANGE_START in tags else ""
    console.print(profile.describe(), soft_wrap=True)
    if not profile.embedded:
        from factory_dagster.execution.worker import check_workers  # lazy: Celery

        check_workers(profile)
    console.print(f"Building {len(run.keys)} assets of {run.label}{span} into {loaded.home.root}")
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=verbose,
    ) as progress:
        task = progress.add_task("starting", total=len(run.keys))

        def on_progress(done: int, current: str) -> None:
            progress.update(task, completed=done, description=f"running {current}")

        report = execute(
            loaded.defs,
            instance,
            run.keys,
            tags=tags,
            on_progress=on_progress,
            log_dir=None if verbose else loaded.home.logs,
            # Production: workers rebuild the job from this pointer to run its steps.
            job=None if profile.embedded else reconstructable_job(loaded, run.keys),
        )
    if run.spec is not None:
        record_lineage(loaded, run.spec, instance, report.run_id, console)
    return report


def reconstructable_job(loaded: Loaded, keys: list[dg.AssetKey]) -> dg.ReconstructableJob:
    from factory_dagster.definitions import reconstructable_job as pointer

    lines = [spec.name for spec in loaded.specs]
    return pointer(str(loaded.root.path), lines, str(loaded.home.root), [key.to_user_string() for key in keys])


def record_lineage(
    loaded: Loaded, spec: FactorySpec, instance: dg.DagsterInstance, run_id: str, console: Console
) -> None:
    """Emit the run's OpenLineage events; a lineage backend that is down never fails a build."""
    config = spec.line.openlineage
    if not config.enabled:
        return
    try:
        sent = emit_run(spec, loaded.defs, loaded.home, instance, run_id)
    except OSError as exc:
        console.print(f"[yellow]OpenLineage events not sent: {exc}[/]")
        return
    if sent:
        where = [str(loaded.home.root / config.file)] if config.file else []
        console.print(f"OpenLineage: {sent} events → {', '.join(where + ([config.url] if config.url else []))}")


def run(args: argparse.Namespace) -> int:
    loaded = load(args, prepare=not args.no_prepare)
    runs = plan(loaded, args.select, args.start, args.end, full_refresh=args.full_refresh)
    # Bound now: while the run executes, sys.stdout goes to the run's log file.
    console = Console(file=sys.stdout, highlight=False)
    success = True
    for line_run in runs:
        report = run_with_progress(loaded, line_run, args.verbose, console)
        if line_run.spec is not None:
            print_summary(console, line_run.spec, report)
        success = success and report.success
    return exit_code(success)
