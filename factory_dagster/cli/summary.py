"""The end-of-run summary: assets, rows, checks, model metrics against baseline, predictions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from factory_dagster.execution.report import RunReport
from factory_dagster.products.source import IGNORED_COLUMNS
from factory_dagster.spec import FactorySpec


def asset_status(report: RunReport, key: str) -> str:
    """Built, or why not: the failing step's reason, or the upstream failure that skipped it."""
    outcome = report.assets.get(key)
    if outcome is not None:
        return "built"
    step = next((s for s, keys in report.step_assets.items() if key in keys), None)
    if step in report.failures:
        return "failed"
    return "skipped"


def _checks_cell(report: RunReport, key: str) -> str:
    checks = [c for c in report.checks if c.asset == key]
    if not checks:
        return "-"
    passed = sum(1 for c in checks if c.passed)
    warned = sum(1 for c in checks if not c.passed and c.severity == "WARN")
    failed = len(checks) - passed - warned
    parts = [f"[green]{passed} passed[/]"] if passed else []
    if warned:
        parts.append(f"[yellow]{warned} warned[/]")
    if failed:
        parts.append(f"[red]{failed} failed[/]")
    return ", ".join(parts)


def print_assets(console: Console, report: RunReport) -> None:
    table = Table(title="Assets", title_justify="left")
    for column in ("asset", "status", "rows", "checks"):
        table.add_column(column, justify="right" if column == "rows" else "left")
    colours = {"built": "green", "failed": "red", "skipped": "yellow"}
    for key in report.selected:
        status = asset_status(report, key)
        outcome = report.assets.get(key)
        rows = f"{outcome.rows:,}" if outcome and outcome.rows is not None else "-"
        table.add_row(key, f"[{colours[status]}]{status}[/]", rows, _checks_cell(report, key))
    console.print(table)


BLOCKED_BY_CHECK = "DagsterAssetCheckFailedError"


def print_problems(console: Console, report: RunReport) -> None:
    """One line per failure (failed steps, failed checks with their expectations), one per
    source that ignored columns, then what they held back. Lines are never wrapped, so each
    reason stays one line."""
    for step, reason in report.failures.items():
        if reason.startswith(BLOCKED_BY_CHECK):
            continue  # the failed check is reported below, with its expectations
        owned = report.step_assets.get(step, [step])
        console.print(f"[red]✗ {escape(', '.join(owned))}[/]: {escape(reason)}", soft_wrap=True)
    for check in report.failed_checks():
        mark, level = ("✗", "red") if check.severity == "ERROR" else ("!", "yellow")
        what = "gate failed" if check.name == "quality_gate" else f"check {check.name} failed"
        expectations = check.metadata.get("failed_expectations") or []
        detail = "; ".join(expectations) if expectations else (check.description or "")
        console.print(
            f"[{level}]{mark} {escape(check.asset)}: {what} ({check.severity})"
            f"{': ' + escape(detail) if detail else ''}[/]",
            soft_wrap=True,
        )
        if "quarantine" in check.metadata:
            console.print(f"    rejected data kept in {check.metadata['quarantine']}", soft_wrap=True, markup=False)
    for key, outcome in report.assets.items():
        ignored = outcome.metadata.get(IGNORED_COLUMNS) or []
        if ignored:
            console.print(
                f"[yellow]! {escape(key)}: ignored {len(ignored)} column{'s' if len(ignored) > 1 else ''} "
                f"the spec does not name (unknown_columns: ignore): {escape(', '.join(map(str, ignored)))}[/]",
                soft_wrap=True,
            )
    skipped = [k for k in report.selected if asset_status(report, k) == "skipped"]
    if skipped:
        console.print(
            f"[yellow]skipped, previous versions kept (an upstream step or blocking check failed): "
            f"{escape(', '.join(skipped))}[/]",
            soft_wrap=True,
        )


def print_model_metrics(console: Console, spec: FactorySpec, report: RunReport) -> None:
    for name in spec.models:
        outcome = report.assets.get(name)
        candidate = next((c for c in report.checks if c.asset == name and not c.passed), None)
        values = outcome.metadata if outcome else (candidate.metadata if candidate else None)
        if not values:
            continue
        status = "" if outcome is not None else " [red]not promoted[/]"
        console.print(
            f"[bold]Model {name}[/]{status}: version {values.get('model_version')}, trained on "
            f"{values.get('train_window')}, evaluated on {values.get('test_window')}",
            soft_wrap=True,
        )
        table = Table()
        for column in ("metric", "model", "baseline"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for key, value in values.items():
            if key.startswith("metric/"):
                metric = key.removeprefix("metric/")
                baseline = values.get(f"baseline/{metric}")
                table.add_row(metric, f"{value:.4f}", f"{baseline:.4f}" if baseline is not None else "-")
        console.print(table)


def print_predictions(console: Console, spec: FactorySpec, report: RunReport, limit: int = 10) -> None:
    for name in spec.predictions:
        outcome = report.assets.get(name)
        uri = outcome.metadata.get("dagster/uri") if outcome else None
        if outcome is None or not uri or not Path(str(uri)).exists():
            continue
        path = Path(str(uri))
        if path.is_dir():  # partitioned: show the latest partition the run wrote
            days = sorted(day for day, rows in outcome.partition_rows().items() if rows)
            if not days:
                continue
            path = path / f"{days[-1]}.parquet"
        frame = pl.read_parquet(path).head(limit).drop("scored_at", "model_name", strict=False)
        console.print(
            f"[bold]Predictions {name}[/]: first {len(frame)} rows of {escape(path.name)} "
            f"({outcome.rows:,} rows written, in {escape(str(uri))})",
            soft_wrap=True,
        )
        table = Table()
        for column in frame.columns:
            table.add_column(column)
        for row in frame.iter_rows():
            table.add_row(*(Text(f"{v:.3f}" if isinstance(v, float) else str(v)) for v in row))
        console.print(table)


def print_footer(console: Console, report: RunReport) -> None:
    built = len(report.assets)
    failed = sum(1 for k in report.selected if asset_status(report, k) == "failed")
    skipped = sum(1 for k in report.selected if asset_status(report, k) == "skipped")
    rows = sum(o.rows or 0 for o in report.assets.values())
    passed = sum(1 for c in report.checks if c.passed)
    warned = len(report.failed_checks("WARN"))
    verdict = "[bold green]SUCCESS[/]" if report.success else "[bold red]FAILED[/]"
    console.print(
        f"{verdict}  {built} assets built, {failed} failed, {skipped} skipped; {rows:,} rows written; "
        f"checks: {passed} passed, {warned} warned, {len(report.checks) - passed - warned} failed; "
        f"{report.seconds:.1f} s (run {report.run_id})",
        soft_wrap=True,
    )
    if report.log_path and not report.success:
        console.print(f"run log (dbt output): {report.log_path}", markup=False)


def print_summary(console: Console, spec: FactorySpec, report: RunReport) -> None:
    print_assets(console, report)
    print_problems(console, report)
    print_model_metrics(console, spec, report)
    print_predictions(console, spec, report)
    print_footer(console, report)
