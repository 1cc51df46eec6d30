"""Flights-shaped data at N times the real flights, and a copy of the flights line that reads it.

Copy k of every real flight (k = 0 … N-1) gets the flight number `flight + k * stride`, the stride a
power of ten above the largest flight number, so the key (year, month, day, carrier, flight, origin)
stays unique while the calendar, carriers, airports, planes and weather stay as they are: every
join, feature and day of the line sees N times the rows. The parquet file is written one copy per
row group, so memory holds the real rows once (336,776) whatever N is: 180x (60M rows) streams.

The copy of the line is a temporary factory root (factory.yaml, lines/<line>/, its dbt models and
macros, its GX suites) whose flights source reads that file (`file:` takes a local path) and whose
row-count bounds per partition day are multiplied by N (bounds on whole dimensions stay).

    python -m benchmarks.flights_data --scale 30 --out /tmp/bench/flights_30x
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parent.parent
LINE = "flights"
SOURCE = "flights"
SHIFTED = "flight"  # the key column that makes each copy's rows distinct
PER_DAY = "partition_days"  # a row-count bound naming it is per partition day: it scales with the data


def source_spec(root: Path = REPO, line: str = LINE, source: str = SOURCE) -> dict[str, Any]:
    """The source's spec as written in the line's sources.yaml."""
    doc = yaml.safe_load((root / "lines" / line / "sources.yaml").read_text(encoding="utf-8"))
    return doc["sources"][source]


def real_flights(root: Path = REPO) -> pl.DataFrame:
    """The real flights, read and typed by the factory's own reader (what the factory lands)."""
    from factory_dagster.products.source_files import SourceContract, read_source_file, resolve_source_uri

    spec = source_spec(root)
    path = resolve_source_uri(spec["file"], root / "lines" / LINE)
    types = {name: kind if isinstance(kind, str) else kind["type"] for name, kind in spec["columns"].items()}
    return read_source_file(path, SourceContract.of(types), spec.get("format", "csv"), spec.get("null_values")).frame


def stride(values: pl.Series) -> int:
    """The smallest power of ten above every value: shifting by it never collides."""
    top = int(values.max() or 0)  # type: ignore[arg-type]  # an integer column
    return 10 ** len(str(max(top, 1)))


def write_scaled(scale: int, path: Path, flights: pl.DataFrame | None = None) -> int:
    """Write `scale` copies of the flights to `path` (parquet, one copy per row group); the rows written."""
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    base = flights if flights is not None else real_flights()
    step = stride(base.get_column(SHIFTED))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    rows = 0
    with pq.ParquetWriter(partial, base.to_arrow().schema, compression="zstd") as writer:
        for copy in range(scale):
            batch = base.with_columns(pl.col(SHIFTED) + copy * step)
            writer.write_table(batch.to_arrow(), row_group_size=batch.height)
            rows += batch.height
    partial.replace(path)
    return rows


def scale_suite(suite: dict[str, Any], scale: int) -> dict[str, Any]:
    """The suite with every row-count bound per partition day multiplied by `scale`."""
    scaled = json.loads(json.dumps(suite))
    for expectation in scaled.get("expectations", []):
        if expectation.get("type") != "expect_table_row_count_to_be_between":
            continue
        for bound in ("min_value", "max_value"):
            value = expectation["kwargs"].get(bound)
            expression = value.get("$PARAMETER", "") if isinstance(value, dict) else ""
            if PER_DAY not in str(expression):
                continue
            if not re.fullmatch(r"[\w.\s*]+", expression):
                # GX takes no parentheses in a suite parameter: only a plain product can be scaled.
                raise ValueError(f"suite {suite.get('name')}: cannot scale the bound {expression!r} (not a product)")
            value["$PARAMETER"] = f"{expression} * {scale}"
    return scaled


def copy_line_root(dest: Path, line: str = LINE, root: Path = REPO) -> Path:
    """A factory root at `dest` serving only `line`: its specs, dbt models and macros, GX suites."""
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "lines").mkdir(parents=True)
    (dest / "factory.yaml").write_text(f"lines: [{line}]\n", encoding="utf-8")
    shutil.copytree(root / "lines" / line, dest / "lines" / line)
    dbt = root / "dbt_project"
    shutil.copytree(dbt / "macros", dest / "dbt_project" / "macros")
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy2(dbt / name, dest / "dbt_project" / name)
    shutil.copytree(dbt / "models" / line, dest / "dbt_project" / "models" / line)
    shutil.copytree(root / "expectations" / line, dest / "expectations" / line)
    return dest


def scaled_flights_root(
    dest: Path, scale: int, data: Path, root: Path = REPO, max_train_rows: int | None = None
) -> Path:
    """A copy of the flights line at `dest` whose flights source reads `data` (written by
    `write_scaled`), its per-day row-count bounds multiplied by `scale`; with `max_train_rows`,
    every model of the line declares it (a training set bounded whatever the scale)."""
    copy_line_root(dest, LINE, root)
    if max_train_rows is not None:
        for models_file in (dest / "lines" / LINE).glob("*.yaml"):
            doc = yaml.safe_load(models_file.read_text(encoding="utf-8")) or {}
            if not doc.get("models"):
                continue
            for model in doc["models"].values():
                model["max_train_rows"] = max_train_rows
            models_file.write_text(
                f"# Generated by benchmarks/flights_data.py: max_train_rows {max_train_rows} on every model.\n"
                + yaml.safe_dump(doc, sort_keys=False),
                encoding="utf-8",
            )
    specs = dest / "lines" / LINE / "sources.yaml"
    doc = yaml.safe_load(specs.read_text(encoding="utf-8"))
    source = doc["sources"][SOURCE]
    source["file"] = str(data.resolve())
    source["format"] = "parquet"
    source.pop("null_values", None)  # parquet holds real nulls
    specs.write_text(
        f"# Generated by benchmarks/flights_data.py: the flights source at {scale}x.\n"
        + yaml.safe_dump(doc, sort_keys=False),
        encoding="utf-8",
    )
    for suite_file in (dest / "expectations" / LINE).glob("*.json"):
        suite = json.loads(suite_file.read_text(encoding="utf-8"))
        suite_file.write_text(json.dumps(scale_suite(suite, scale), indent=2) + "\n", encoding="utf-8")
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description="Flights at N times, and a factory root whose line reads them.")
    parser.add_argument("--scale", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for flights.parquet and the factory root")
    args = parser.parse_args()
    data = args.out / "flights.parquet"
    rows = write_scaled(args.scale, data)
    root = scaled_flights_root(args.out / "root", args.scale, data)
    print(f"wrote {rows:,} rows to {data}; factory root {root} (factory build --root {root})")


if __name__ == "__main__":
    main()
