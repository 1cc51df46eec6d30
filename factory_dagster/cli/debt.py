"""`factory debt`: the technical-debt report and ML Test Score of every line, for people and CI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from factory_dagster.cli.common import console, fail, load
from factory_dagster.execution.instance import factory_instance
from factory_dagster.factory import build_gates
from factory_dagster.lineage.assess import Assessment, assess
from factory_dagster.lineage.definitions import line_reports
from factory_dagster.lineage.ml_test_score import SECTIONS
from factory_dagster.lineage.report import to_json, write_html, write_json
from factory_dagster.spec import SpecError

COLOURS = {"high": "red", "medium": "yellow", "low": "cyan"}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("debt", help="technical debt found in the lineage, and the ML Test Score")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument(
        "--fail-on",
        choices=("high", "medium", "low"),
        help="exit 1 if a finding of this severity or worse remains (for CI)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    instance = factory_instance(loaded.home)
    results = {}
    for spec in loaded.specs:
        gates = build_gates(spec)
        try:
            results[spec.name] = assess(spec, loaded.defs, instance, {k: g.suite for k, g in gates.items()})
        except SpecError as exc:
            fail(str(exc))
    html = {}
    for line, result in results.items():
        html[line] = write_html(line_reports(loaded.home, line) / "debt.html", result.graph, result.debt, result.scores)
        write_json(line_reports(loaded.home, line) / "debt.json", result.debt, result.scores)
    if args.format == "json":
        console.print_json(json.dumps({"lines": {line: to_json(r.debt, r.scores) for line, r in results.items()}}))
    else:
        for line, result in results.items():
            print_line(line, result, html[line])
    if args.fail_on and any(r.debt.at_least(args.fail_on) for r in results.values()):
        return 1
    return 0


def print_line(line: str, result: Assessment, html: Path) -> None:
    report, scores = result.debt, result.scores
    table = Table(title=f"Technical debt of line {line}", title_justify="left")
    for column in ("severity", "rule", "assets", "evidence", "fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        table.add_row(
            f"[{COLOURS[f.severity]}]{f.severity}[/]",
            escape(f"{f.rule} {f.name}"),
            escape(", ".join(f.assets)),
            escape(f.evidence + (f" ({', '.join(f.columns)})" if f.columns else "")),
            escape(f.fix),
        )
    console.print(table if report.findings else f"Line {line}: no debt found.")
    counts = report.counts()
    console.print(
        f"debt score {report.score}: {counts['high']} high, {counts['medium']} medium, "
        f"{counts['low']} low; {len(report.excepted)} accepted by exceptions in the spec"
    )
    for score in scores:
        console.print(
            f"[bold]ML Test Score {score.model}: {score.score:g}[/] ({score.band}) — "
            + ", ".join(f"{s} {score.section(s):g}" for s in SECTIONS)
        )
        tests = Table()
        for column in ("test", "title", "score", "evidence"):
            tests.add_column(column, overflow="fold")
        for t in score.tests:
            tests.add_row(t.id, escape(t.title), f"{t.score:g}", escape(t.evidence))
        console.print(tests)
    console.print(f"HTML report with the lineage graph: {html}", markup=False, soft_wrap=True)
