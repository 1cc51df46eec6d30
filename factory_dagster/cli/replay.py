"""`factory replay`: simulate the upstream feed, one landing file per day, from the source data."""

from __future__ import annotations

import argparse
import datetime as dt

from factory_dagster.automation import landing
from factory_dagster.automation.partitions import check_range, partitions_def
from factory_dagster.cli.common import console, fail, load
from factory_dagster.products.source_files import IngestionError, read_source


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("replay", help="drop daily files into the landing zone, as upstream would")
    parser.add_argument("--start", metavar="DAY", required=True, help="first day (e.g. 2013-01-01)")
    parser.add_argument("--end", metavar="DAY", required=True, help="last day, inclusive")
    parser.add_argument("--source", help="one source (default: every source with a landing folder)")
    parser.add_argument(
        "--file-format", choices=("csv", "parquet"), default="csv", help="format of the landing files (default: csv)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    with_landing = {n: spec for spec in loaded.specs for n, s in spec.sources.items() if s.landing}
    names = [args.source] if args.source else list(with_landing)
    if not names or any(n not in with_landing for n in names):
        fail(f"no source with a landing folder named {args.source!r} (with one: {', '.join(with_landing) or 'none'})")
    for name in names:
        spec = with_landing[name]
        source = spec.sources[name]
        partitions = spec.partitions[source.partition.partitions]
        try:
            first, last = (
                dt.date.fromisoformat(day) for day in check_range(partitions_def(partitions), args.start, args.end)
            )
            read, _ = read_source(source, spec.spec_dir)
        except (ValueError, IngestionError) as exc:
            fail(f"{name}: {exc}")
        rows = read.frame.with_columns(landing.row_dates(source, partitions.timezone).alias(landing.ROW_DATE))
        folder = landing.landing_dir(loaded.home, source)
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        written = 0
        null = source.null_values[0] if source.null_values else ""
        for day in days:
            part = rows.filter(rows.get_column(landing.ROW_DATE) == day).drop(landing.ROW_DATE)
            landing.write_day(folder, day, landing.upstream_frame(source, part), args.file_format, null)
            written += part.height
        console.print(f"{name}: {len(days)} files, {written:,} rows → {folder}", markup=False)
    return 0
