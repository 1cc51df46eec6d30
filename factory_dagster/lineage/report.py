"""Render the debt report and the ML Test Score: markdown (Dagster UI), JSON, and an HTML page
with the lineage graph, each asset coloured by its worst finding."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from factory_dagster.lineage.debt import SEVERITY_ORDER, DebtReport
from factory_dagster.lineage.graph import FactoryGraph
from factory_dagster.lineage.ml_test_score import SECTIONS, ModelScore
from factory_dagster.markdown import markdown_table
from factory_dagster.storage.atomic import atomic_write

COLOURS = {
    "high": ("#fdecea", "#c0392b"),
    "medium": ("#fff4e5", "#e67e22"),
    "low": ("#fffbe6", "#b7950b"),
    None: ("#eef7ee", "#2e7d32"),
}
BOX_W, BOX_H, GAP_X, GAP_Y = 190, 30, 70, 14


def findings_markdown(report: DebtReport) -> str:
    if not report.findings:
        return "No debt found."
    return markdown_table(
        ["severity", "rule", "assets", "evidence", "fix"],
        [(f.severity, f"{f.rule} {f.name}", ", ".join(f.assets), f.evidence, f.fix) for f in report.findings],
    )


def score_markdown(score: ModelScore) -> str:
    head = (
        f"**{score.model}: ML Test Score {score.score:g}** ({score.band}); sections: "
        + ", ".join(f"{s} {score.section(s):g}" for s in SECTIONS)
        + "\n\n"
    )
    return head + markdown_table(
        ["test", "title", "score", "evidence"], [(t.id, t.title, f"{t.score:g}", t.evidence) for t in score.tests]
    )


def to_json(report: DebtReport, scores: list[ModelScore]) -> dict[str, object]:
    return {"debt": report.to_json(), "ml_test_score": [s.to_json() for s in scores]}


def _worst(report: DebtReport, key: str) -> str | None:
    found = report.for_asset(key)
    return min((f.severity for f in found), key=lambda s: SEVERITY_ORDER[s]) if found else None


def lineage_svg(graph: FactoryGraph, report: DebtReport) -> str:
    """The asset graph, left to right by depth, boxes coloured by their worst finding."""
    memo: dict[str, int] = {}
    layers: dict[int, list[str]] = {}
    for key in sorted(graph.nodes):
        layers.setdefault(graph.depth(key, memo), []).append(key)
    position = {}
    for depth, keys in layers.items():
        for row, key in enumerate(keys):
            position[key] = (20 + depth * (BOX_W + GAP_X), 20 + row * (BOX_H + GAP_Y))
    width = 40 + (max(layers) + 1) * (BOX_W + GAP_X)
    height = 40 + max(len(k) for k in layers.values()) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        f'font-size="12">'
    ]
    for key, node in graph.nodes.items():
        for parent in sorted(node.parents):
            if parent in position:
                (x1, y1), (x2, y2) = position[parent], position[key]
                parts.append(
                    f'<path d="M{x1 + BOX_W},{y1 + BOX_H / 2} C{x1 + BOX_W + GAP_X / 2},{y1 + BOX_H / 2} '
                    f'{x2 - GAP_X / 2},{y2 + BOX_H / 2} {x2},{y2 + BOX_H / 2}" fill="none" stroke="#999"/>'
                )
    for key, (x, y) in position.items():
        worst = _worst(report, key)
        fill, stroke = COLOURS[worst]
        findings = "; ".join(f"{f.rule} {f.name}" for f in report.for_asset(key)) or "no finding"
        label = key if len(key) <= 26 else key[:25] + "…"
        parts.append(
            f"<g><title>{html.escape(key)} ({graph.nodes[key].role}): {html.escape(findings)}</title>"
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if worst else 1}"/>'
            f'<text x="{x + 8}" y="{y + 19}">{html.escape(label)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html_report(graph: FactoryGraph, report: DebtReport, scores: list[ModelScore]) -> str:
    counts = report.counts()
    sections = [
        f"<h1>Technical debt: line {html.escape(graph.spec.name)}</h1>",
        f"<p>Debt score {report.score} (high {counts['high']}, medium {counts['medium']}, low {counts['low']}); "
        f"{len(report.excepted)} finding(s) accepted by exceptions. Generated "
        f"{dt.datetime.fromtimestamp(graph.now, dt.UTC):%Y-%m-%d %H:%M UTC}.</p>",
        "<h2>Lineage</h2><p>Colour = worst finding on the asset (hover for the rules).</p>",
        f'<div class="graph">{lineage_svg(graph, report)}</div>',
        "<h2>Findings</h2>",
        _table(
            ["severity", "rule", "assets", "columns", "evidence", "fix"],
            [
                [f.severity, f"{f.rule} {f.name}", ", ".join(f.assets), ", ".join(f.columns), f.evidence, f.fix]
                for f in report.findings
            ],
        )
        if report.findings
        else "<p>No debt found.</p>",
    ]
    for score in scores:
        sections.append(
            f"<h2>ML Test Score: {html.escape(score.model)} = {score.score:g} ({html.escape(score.band)})"
            "</h2><p>" + ", ".join(f"{s} {score.section(s):g}" for s in SECTIONS) + "</p>"
        )
        sections.append(
            _table(
                ["test", "section", "title", "score", "evidence"],
                [[t.id, t.section, t.title, f"{t.score:g}", t.evidence] for t in score.tests],
            )
        )
    if report.excepted:
        sections.append("<h2>Accepted by exceptions</h2>")
        sections.append(
            _table(
                ["rule", "assets", "evidence", "reason"],
                [[f"{f.rule} {f.name}", ", ".join(f.assets), f.evidence, f.excepted_by or ""] for f in report.excepted],
            )
        )
    style = (
        "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;font-size:13px}th{background:#f4f4f4}"
        ".graph{overflow-x:auto;border:1px solid #ddd;padding:8px}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Technical debt</title><style>{style}</style>"
        f"</head><body>{''.join(sections)}</body></html>"
    )


def write_html(path: Path, graph: FactoryGraph, report: DebtReport, scores: list[ModelScore]) -> Path:
    text = html_report(graph, report, scores)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, report: DebtReport, scores: list[ModelScore]) -> Path:
    text = json.dumps(to_json(report, scores), indent=2)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
