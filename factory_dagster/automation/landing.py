"""The landing zone: one file per day per source, `<home>/landing/<folder>/<YYYY-MM-DD>.csv|parquet`.

Upstream systems drop files here; the sensor turns each new or changed file into a run for its
day; the raw asset lands exactly that day from it. Files are written by `factory replay`
atomically (temp name, then rename), so a reader never sees half a file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from factory_dagster.storage.artifacts import sha256_file
from factory_dagster.storage.atomic import atomic_write
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import Warehouse, quote

SUFFIXES = (".csv", ".parquet")
ROW_DATE = "__factory_row_date"


class PartitionedSource(Protocol):
    """What landing needs of a source (products/source.py declares it): its landing folder, how
    a row's day is read (`partition`: a date column or date parts), its column types, and each
    column's header in the files (landing files carry upstream's headers, as the source file does)."""

    @property
    def landing(self) -> str | None: ...

    @property
    def partition(self) -> Any: ...

    def column_types(self) -> Mapping[str, str]: ...

    def headers(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class LandedFile:
    path: Path
    day: dt.date | None
    problem: str | None = None  # why the file cannot land (its name, its day)

    @property
    def format(self) -> str:
        return "parquet" if self.path.suffix == ".parquet" else "csv"


def landing_dir(home: FactoryHome, source: PartitionedSource) -> Path:
    if source.landing is None:
        raise ValueError("this source has no landing folder")
    return home.landing / source.landing


def scan(folder: Path, first: dt.date | None = None, last: dt.date | None = None) -> list[LandedFile]:
    """The files in a landing folder, each with its day or the reason it is refused."""
    if not folder.is_dir():
        return []
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue  # hidden: a file being written
        if path.suffix not in SUFFIXES:
            files.append(LandedFile(path, None, f"{path.name}: not a .csv or .parquet file"))
            continue
        try:
            day = dt.date.fromisoformat(path.stem)
        except ValueError:
            files.append(LandedFile(path, None, f"{path.name}: the file name must be the day, YYYY-MM-DD"))
            continue
        if (first and day < first) or (last and day > last):
            files.append(
                LandedFile(path, day, f"{path.name}: {day} is outside the partitions {first or '…'}..{last or '…'}")
            )
            continue
        files.append(LandedFile(path, day))
    return files


def fingerprint(path: Path) -> str:
    return sha256_file(path)[:16]


def row_dates(source: PartitionedSource, timezone: str) -> pl.Expr:
    """The local day of each row of a partitioned source."""
    assert source.partition is not None
    parts = source.partition.date_parts
    if parts is not None:
        return pl.date(pl.col(parts.year), pl.col(parts.month), pl.col(parts.day))
    column = pl.col(source.partition.date_column)
    if source.column_types()[source.partition.date_column] == "timestamp":
        return column.dt.convert_time_zone(timezone).dt.date()
    return column.cast(pl.Date)


def date_predicate(source: PartitionedSource, timezone: str, warehouse: Warehouse) -> str:
    """SQL selecting a source's rows dated between two parameters, in the warehouse's dialect."""
    assert source.partition is not None
    parts = source.partition.date_parts
    if parts is not None:
        # PostgreSQL's make_date takes integers only; DuckDB's takes any integer type.
        expression = (
            "make_date(" + ", ".join(f"cast({quote(p)} as integer)" for p in (parts.year, parts.month, parts.day)) + ")"
        )
    elif source.column_types()[source.partition.date_column] == "timestamp":
        escaped = timezone.replace("'", "''")
        expression = f"cast(timezone('{escaped}', {quote(source.partition.date_column)}) as date)"
    else:
        expression = f"cast({quote(source.partition.date_column)} as date)"
    return warehouse.between(expression)


def upstream_frame(source: PartitionedSource, frame: pl.DataFrame) -> pl.DataFrame:
    """Landed rows as upstream sends them: each column under its header in the files."""
    return frame.rename(dict(source.headers()))


def write_day(folder: Path, day: dt.date, frame: pl.DataFrame, file_format: str = "csv", null: str = "") -> Path:
    """A day's file, written atomically (a sensor never sees it half-written)."""
    path = folder / f"{day.isoformat()}.{file_format}"
    if file_format == "parquet":
        return atomic_write(path, lambda tmp: frame.write_parquet(tmp))
    return atomic_write(path, lambda tmp: frame.write_csv(tmp, null_value=null, datetime_format="%Y-%m-%dT%H:%M:%SZ"))
