"""Standard Dagster metadata for tables the factory writes: row count, column schema, version."""

from __future__ import annotations

from typing import Any

import dagster as dg
import polars as pl

from factory_dagster.gates.publish import PARTITION_ROWS
from factory_dagster.markdown import markdown_table


def metadata_values(metadata: Any) -> dict[str, Any]:
    """Plain values of Dagster metadata (MetadataValue → its value)."""
    return {k: getattr(v, "value", v) for k, v in dict(metadata).items()}


def column_schema(
    schema: pl.Schema | dict[str, pl.DataType], descriptions: dict[str, str] | None = None
) -> dg.TableSchema:
    descriptions = descriptions or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name=name, type=str(dtype), description=descriptions.get(name))
            for name, dtype in schema.items()
        ]
    )


def table_metadata(frame: pl.DataFrame, descriptions: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "dagster/row_count": dg.MetadataValue.int(frame.height),
        "dagster/column_schema": column_schema(frame.schema, descriptions),
    }


def frame_markdown(frame: pl.DataFrame) -> str:
    """A small frame as a markdown table (the Dagster UI renders it)."""
    return markdown_table(frame.columns, frame.iter_rows())


def partition_rows(frame: pl.DataFrame, day: pl.Expr, window) -> dict[str, Any]:
    """Rows per partition of the window (zero for empty days), for `scope_partition_rows`."""
    counts = {str(d): n for d, n in frame.group_by(day.alias("day")).len().iter_rows()}
    return {PARTITION_ROWS: {k: counts.get(k, 0) for k in window.keys}}
