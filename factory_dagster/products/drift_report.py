"""The drift report: one self-contained HTML page per scored day, for people who would rather look
than read: every column's reference and current distributions side by side, drifted columns first."""

from __future__ import annotations

import html
from pathlib import Path

from factory_dagster.products.drift import P_VALUE_TESTS, ColumnDrift, DatasetDrift, Histogram
from factory_dagster.storage.atomic import atomic_write

BAR_WIDTH = 14
PLOT_HEIGHT = 120
REFERENCE_COLOR = "#4c78a8"
CURRENT_COLOR = "#f58518"


def _svg(histogram: Histogram) -> str:
    """Reference and current shares per bin as paired bars, with the bins' labels below."""
    peak = max([*histogram.reference, *histogram.current, 1e-9])
    width = len(histogram.labels) * (2 * BAR_WIDTH + 6) + 10
    parts = [f'<svg width="{width}" height="{PLOT_HEIGHT + 60}" role="img">']
    for i, label in enumerate(histogram.labels):
        x = 5 + i * (2 * BAR_WIDTH + 6)
        for j, (share, color) in enumerate(
            ((histogram.reference[i], REFERENCE_COLOR), (histogram.current[i], CURRENT_COLOR))
        ):
            h = PLOT_HEIGHT * share / peak
            parts.append(
                f'<rect x="{x + j * BAR_WIDTH}" y="{PLOT_HEIGHT - h:.1f}" width="{BAR_WIDTH - 1}" '
                f'height="{h:.1f}" fill="{color}"><title>{html.escape(label)}: '
                f"{'reference' if j == 0 else 'current'} {share:.1%}</title></rect>"
            )
        parts.append(
            f'<text x="{x + BAR_WIDTH}" y="{PLOT_HEIGHT + 12}" font-size="9" text-anchor="end" '
            f'transform="rotate(-45 {x + BAR_WIDTH} {PLOT_HEIGHT + 12})">{html.escape(label[:14])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def verdict(column: ColumnDrift) -> str:
    """`ks p=0.0012 < 0.05`, `wasserstein 0.31 >= 0.1`, or why the column was not judged."""
    if not column.judged or column.score is None:
        return f"not judged: {column.note}"
    if column.threshold is None:
        return f"{column.test} {column.score:.4g}"
    if column.test in P_VALUE_TESTS:
        return f"{column.test} p={column.score:.4g} {'<' if column.drifted else '>='} {column.threshold}"
    return f"{column.test} {column.score:.4g} {'>=' if column.drifted else '<'} {column.threshold}"


def render(title: str, drift: DatasetDrift) -> str:
    judged = drift.judged
    head = (
        f"<h1>{html.escape(title)}</h1><p><b>{'Dataset drift' if drift.drifted else 'No dataset drift'}</b>: "
        f"{sum(c.drifted for c in judged)} of {len(judged)} columns drifted "
        f"(share {drift.share:.2f}, threshold {drift.drift_share}); {drift.rows} rows scored. "
        f'<span style="color:{REFERENCE_COLOR}">■ reference</span> '
        f'<span style="color:{CURRENT_COLOR}">■ current</span></p>'
    )
    sections = []
    for column in drift.ordered():
        mark = "DRIFT" if column.drifted else ("ok" if column.judged else "—")
        note = f" ({html.escape(column.note)})" if column.note and column.judged else ""
        plot = _svg(column.histogram) if column.histogram else ""
        sections.append(
            f'<section><h2 style="color:{"#c0392b" if column.drifted else "#333"}">{html.escape(column.column)} '
            f"<small>{mark} · {column.kind} · {html.escape(verdict(column))}{note} · reference "
            f"{column.reference_rows} values, current {column.current_rows}</small></h2>{plot}</section>"
        )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>'
        + html.escape(title)
        + "</title><style>body{font-family:sans-serif;margin:2em}h2{font-size:1.05em}small{font-weight:normal}"
        + "</style></head><body>"
        + head
        + "".join(sections)
        + "</body></html>"
    )


def write_report(path: Path, title: str, drift: DatasetDrift) -> Path:
    """Write the report atomically (a reader never sees half a page)."""
    text = render(title, drift)
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
