"""The source kind: a raw file landed into the warehouse's `raw` schema, typed as declared.

A partitioned source lands the days of the run's window: a day's landing file when there is
one, else the rows of the source file dated that day; the window's rows are replaced in one
transaction, so re-running a day never duplicates it.
"""

# No `from __future__ import annotations`: Dagster reads the asset functions' resource annotations.
from typing import Literal

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field, model_validator

from factory_dagster.automation import landing
from factory_dagster.automation.partitions import Window, window_of
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.products.kind import BuildableKind, BuildContext, code_version, product_asset
from factory_dagster.products.metadata import column_schema, partition_rows, table_metadata
from factory_dagster.products.source_files import (
    POLARS_TYPES,
    IngestionError,
    read_source,
    read_source_file,
    resolve_source_uri,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.column_kinds import DECLARED, Kind
from factory_dagster.spec.errors import SpecError, display_path
from factory_dagster.spec.product import ProductSpec
from factory_dagster.spec.references import check_partitions_name
from factory_dagster.spec.types import ColumnType, Name, NonEmpty, Strict
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import quote, replace_rows, replace_table

RAW_SCHEMA = "raw"


class DateParts(Strict):
    year: Name
    month: Name
    day: Name


class SourcePartitionSpec(Strict):
    """Which partition a row belongs to: a date (or timestamp) column, or year/month/day columns."""

    partitions: Name
    date_column: Name | None = None
    date_parts: DateParts | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "SourcePartitionSpec":
        if (self.date_column is None) == (self.date_parts is None):
            raise ValueError("give exactly one of date_column or date_parts")
        return self

    def columns(self) -> list[str]:
        if self.date_parts is not None:
            return [self.date_parts.year, self.date_parts.month, self.date_parts.day]
        return [self.date_column] if self.date_column else []


class SourceSpec(ProductSpec):
    """A raw table landed from a file into the warehouse's `raw` schema.

    A partitioned source lands day by day: from `<factory home>/landing/<landing>/<day>.csv`
    (or `.parquet`) when such a file exists, else from the rows of `file` dated that day.
    """

    file: NonEmpty  # `package://<package>/<path>` or a path (relative to the spec folder)
    format: Literal["csv", "parquet"] = "csv"
    null_values: list[str] = []
    columns: dict[Name, ColumnType] = Field(min_length=1)
    primary_key: list[Name] = []
    partition: SourcePartitionSpec | None = None
    landing: Name | None = None

    @model_validator(mode="after")
    def _key_in_columns(self) -> "SourceSpec":
        missing = [c for c in self.primary_key if c not in self.columns]
        if missing:
            raise ValueError(f"primary_key names unknown column(s): {', '.join(missing)}")
        if self.partition is not None:
            missing = [c for c in self.partition.columns() if c not in self.columns]
            if missing:
                raise ValueError(f"partition names unknown column(s): {', '.join(missing)}")
        if self.landing is not None and self.partition is None:
            raise ValueError("a landing folder needs a partition (files are named by day)")
        return self


class SourceKind(BuildableKind):
    section = "sources"
    spec_model = SourceSpec
    label = "source"
    readable = True
    role = "source"

    def key(self, spec: FactorySpec, name: str) -> str:
        # dagster-dbt maps dbt source `raw.<table>` to this key, so dbt models depend on raw assets.
        return f"{RAW_SCHEMA}/{name}"

    def relation(self, spec: FactorySpec, name: str) -> str:
        return f"{quote(RAW_SCHEMA)}.{quote(name)}"

    def columns(self, spec: FactorySpec, name: str) -> dict[str, Kind]:
        return {c: DECLARED[t] for c, t in spec.sources[name].columns.items()}

    def row_key(self, spec: FactorySpec, name: str) -> list[str] | None:
        return list(spec.sources[name].primary_key) or None

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        source: SourceSpec = spec.sources[name]
        errors: list[SpecError] = []
        if source.partition is not None:
            check_partitions_name(
                spec, "sources", name, ("partition", "partitions"), source.partition.partitions, errors
            )
            column = source.partition.date_column
            if column is not None and source.columns.get(column) not in ("date", "timestamp"):
                errors.append(
                    spec.error(
                        "sources",
                        name,
                        ("partition", "date_column"),
                        f"'{column}' is {source.columns.get(column)}: a partition needs a date or "
                        "timestamp column (or date_parts)",
                    )
                )
        return errors

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_source_asset(spec, name, context) for name in names]


KIND = SourceKind()


def read_window(spec: FactorySpec, source: SourceSpec, home: FactoryHome, window: Window, files: list) -> pl.DataFrame:
    """The rows of a partitioned source for the window's days (landing files take precedence)."""
    day_of = landing.row_dates(source, window.timezone)
    landed = {}
    if source.landing is not None:
        landed = {
            f.day: f
            for f in landing.scan(landing.landing_dir(home, source))
            if f.problem is None and f.day is not None and window.first <= f.day <= window.last
        }
    frames = []
    from_seed = [day for day in window.days if day not in landed]
    if from_seed:
        files.append(resolve_source_uri(source.file, spec.spec_dir))
        seed, _ = read_source(source, spec.spec_dir)
        frames.append(seed.filter(day_of.is_in(from_seed)))
    for day, landed_file in sorted(landed.items()):
        files.append(landed_file.path)
        frame = read_source_file(landed_file.path, source.columns, landed_file.format, source.null_values)
        dates = frame.select(day_of.alias("day")).get_column("day")
        wrong = dates.is_null() | (dates != day)
        if wrong.any():
            row = int(wrong.arg_true()[0])
            raise IngestionError(
                f"{display_path(landed_file.path)}: row {row + 1} is dated {dates[row]}, not {day}: "
                f"a landing file holds the rows of its own day only"
            )
        frames.append(frame)
    if not frames:
        return pl.DataFrame(schema={c: POLARS_TYPES[t] for c, t in source.columns.items()})
    return pl.concat(frames)


def build_source_asset(spec: FactorySpec, name: str, context: BuildContext) -> dg.AssetsDefinition:
    source: SourceSpec = spec.sources[name]
    declared = {column: POLARS_TYPES[kind] for column, kind in source.columns.items()}
    key = dg.AssetKey.from_user_string(KIND.key(spec, name))
    gate = context.gates.get(key.to_user_string())
    partitions = spec.partitions[source.partition.partitions] if source.partition else None
    metadata = {
        "dagster/column_schema": column_schema(declared),
        "dagster/table_name": f"warehouse.{RAW_SCHEMA}.{name}",
        "factory/source_file": source.file,
        "factory/primary_key": ", ".join(source.primary_key) or "none",
        **({"factory/landing": f"landing/{source.landing}/<YYYY-MM-DD>.csv|parquet"} if source.landing else {}),
    }

    @product_asset(
        spec,
        source,
        key=key,
        kinds={"duckdb", "polars"},
        partitions=partitions,
        gate=gate,
        metadata=metadata,
        version=code_version([source], code=[build_source_asset, read_window, read_source_file]),
    )
    def _land(context: AssetExecutionContext, factory: FactoryResource):
        home = factory.paths
        window = window_of(context, partitions) if partitions else None
        files: list = []
        try:
            if window is None:
                files.append(resolve_source_uri(source.file, spec.spec_dir))
                frame, _ = read_source(source, spec.spec_dir)
            else:
                frame = read_window(spec, source, home, window, files)
        except IngestionError as exc:
            folder = quarantine(home, key.to_user_string(), context.run.run_id, str(exc), files=files)
            raise dg.Failure(
                description=f"ingestion failed: {exc}", allow_retries=False, metadata={"quarantine": str(folder)}
            ) from None

        def publish() -> dict[str, object]:
            if window is None:
                replace_table(home.warehouse, RAW_SCHEMA, name, frame.to_arrow())
                extra = {}
            else:
                replace_rows(
                    home.warehouse,
                    RAW_SCHEMA,
                    name,
                    frame.to_arrow(),
                    landing.date_predicate(source, window.timezone),
                    [window.first, window.last],
                )
                extra = partition_rows(frame, landing.row_dates(source, window.timezone), window)
            context.log.info(
                f"landed {frame.height} rows into {RAW_SCHEMA}.{name} from {', '.join(display_path(f) for f in files)}"
            )
            return {
                **table_metadata(frame),
                **extra,
                "factory/source_files": dg.MetadataValue.json([str(f) for f in files]),
            }

        yield from audit_then_publish(
            context, home, gate, frame, publish, files=files, parameters=window.parameters() if window else None
        )

    return _land
