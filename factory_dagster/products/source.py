"""The source kind: a raw file landed into the warehouse's `raw` schema, typed as declared.

A partitioned source lands the days of the run's window: a day's landing file when there is
one, else the rows of the source file dated that day; the window's rows are replaced in one
transaction, so re-running a day never duplicates it.
"""

# No `from __future__ import annotations`: Dagster reads the asset functions' resource annotations.
from typing import Any, Literal

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
    ColumnContract,
    IngestionError,
    SourceContract,
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
from factory_dagster.storage.warehouse import quote

RAW_SCHEMA = "raw"
IGNORED_COLUMNS = "factory/ignored_columns"  # headers a run's files had that the spec does not name


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


class SourceColumnSpec(Strict):
    """One column of a source, named as in the warehouse by its key in `columns`.

    `name: type` is the short form; the long form says where it comes from and whether a file
    may lack it: `adj_close: {type: float, from: "Adj Close", optional: true}`.
    """

    type: ColumnType
    from_: NonEmpty | None = Field(None, alias="from")  # the header in the file (default: the name)
    optional: bool = False  # a file without it lands the column as nulls of its type

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class SourceSpec(ProductSpec):
    """A raw table landed from a file into the warehouse's `raw` schema.

    A partitioned source lands day by day: from `<factory home>/landing/<landing>/<day>.csv`
    (or `.parquet`) when such a file exists, else from the rows of `file` dated that day.
    """

    file: NonEmpty  # `package://<package>/<path>` or a path (relative to the spec folder)
    format: Literal["csv", "parquet"] = "csv"
    null_values: list[str] = []
    columns: dict[Name, SourceColumnSpec] = Field(min_length=1)
    unknown_columns: Literal["refuse", "ignore"] = "refuse"  # headers the spec does not name
    header_match: Literal["exact", "case_insensitive"] = "exact"
    ignore_columns: list[NonEmpty] = []  # headers dropped on purpose (under either policy)
    primary_key: list[Name] = []
    partition: SourcePartitionSpec | None = None
    landing: Name | None = None

    def column_types(self) -> dict[str, ColumnType]:
        return {name: column.type for name, column in self.columns.items()}

    def headers(self) -> dict[str, str]:
        """Each column's header in the files, by its warehouse name."""
        return {name: column.from_ or name for name, column in self.columns.items()}

    def contract(self) -> SourceContract:
        headers = self.headers()
        return SourceContract(
            tuple(ColumnContract(n, headers[n], c.type, c.optional) for n, c in self.columns.items()),
            self.unknown_columns,
            self.header_match,
            tuple(self.ignore_columns),
        )

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
        return {c: DECLARED[t] for c, t in spec.sources[name].column_types().items()}

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
            kind = source.column_types().get(column or "")
            if column is not None and kind not in ("date", "timestamp"):
                errors.append(
                    spec.error(
                        "sources",
                        name,
                        ("partition", "date_column"),
                        f"'{column}' is {kind}: a partition needs a date or timestamp column (or date_parts)",
                    )
                )
        return errors + check_contract(spec, name)

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_source_asset(spec, name, context) for name in names]


KIND = SourceKind()


def check_contract(spec: FactorySpec, name: str) -> list[SpecError]:
    """Each header feeds one column, a header is declared or ignored (not both), and the columns
    that key or partition a row are in every file."""
    source: SourceSpec = spec.sources[name]
    errors: list[SpecError] = []
    fold = source.contract().fold()
    matching = " (header_match: case_insensitive)" if source.header_match == "case_insensitive" else ""
    reader: dict[str, str] = {}  # folded header → the column reading it
    for column, header in source.headers().items():
        other = reader.setdefault(fold(header), column)
        if other != column:
            where = ("columns", column, "from") if source.columns[column].from_ else ("columns", column)
            errors.append(
                spec.error(
                    "sources",
                    name,
                    where,
                    f"header '{header}' is already read by column '{other}'{matching}: each header feeds one column",
                )
            )
    for index, header in enumerate(source.ignore_columns):
        if fold(header) in reader:
            errors.append(
                spec.error(
                    "sources",
                    name,
                    ("ignore_columns", index),
                    f"header '{header}' is read by column '{reader[fold(header)]}'{matching}: "
                    "a header is declared or ignored, not both",
                )
            )
    needed = [("primary_key", c) for c in source.primary_key]
    needed += [("partition", c) for c in (source.partition.columns() if source.partition else [])]
    for role, column in needed:
        if column in source.columns and source.columns[column].optional:
            errors.append(
                spec.error(
                    "sources",
                    name,
                    ("columns", column, "optional"),
                    f"'{column}' is in the {role.replace('_', ' ')}: it cannot be optional",
                )
            )
    return errors


def read_window(
    spec: FactorySpec, source: SourceSpec, home: FactoryHome, window: Window, files: list, ignored: set[str]
) -> pl.DataFrame:
    """The rows of a partitioned source for the window's days (landing files take precedence);
    the files read are added to `files`, the headers ignored in them to `ignored`."""
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
        ignored.update(seed.ignored)
        frames.append(seed.frame.filter(day_of.is_in(from_seed)))
    for day, landed_file in sorted(landed.items()):
        files.append(landed_file.path)
        read = read_source_file(landed_file.path, source.contract(), landed_file.format, source.null_values)
        ignored.update(read.ignored)
        frame = read.frame
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
        return pl.DataFrame(schema={c: POLARS_TYPES[t] for c, t in source.column_types().items()})
    return pl.concat(frames)


def renamed_columns(source: SourceSpec) -> str:
    """`Adj Close → adj_close, ...`: the columns read from a header of another name."""
    return ", ".join(f"{h} → {n}" for n, h in source.headers().items() if h != n)


def build_source_asset(spec: FactorySpec, name: str, context: BuildContext) -> dg.AssetsDefinition:
    source: SourceSpec = spec.sources[name]
    declared = {column: POLARS_TYPES[kind] for column, kind in source.column_types().items()}
    key = dg.AssetKey.from_user_string(KIND.key(spec, name))
    gate = context.gates.get(key.to_user_string())
    partitions = spec.partitions[source.partition.partitions] if source.partition else None
    renamed = renamed_columns(source)
    metadata = {
        "dagster/column_schema": column_schema(declared),
        "dagster/table_name": f"warehouse.{RAW_SCHEMA}.{name}",
        "factory/source_file": source.file,
        "factory/primary_key": ", ".join(source.primary_key) or "none",
        **({"factory/renamed_columns": renamed} if renamed else {}),
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
        home, warehouse = factory.paths, factory.warehouse
        window = window_of(context, partitions) if partitions else None
        files: list = []
        ignored: set[str] = set()
        try:
            if window is None:
                files.append(resolve_source_uri(source.file, spec.spec_dir))
                read, _ = read_source(source, spec.spec_dir)
                frame = read.frame
                ignored.update(read.ignored)
            else:
                frame = read_window(spec, source, home, window, files, ignored)
        except IngestionError as exc:
            folder = quarantine(home, key.to_user_string(), context.run.run_id, str(exc), files=files)
            raise dg.Failure(
                description=f"ingestion failed: {exc}", allow_retries=False, metadata={"quarantine": str(folder)}
            ) from None

        def publish() -> dict[str, object]:
            if window is None:
                warehouse.replace_table(RAW_SCHEMA, name, frame.to_arrow())
                extra = {}
            else:
                warehouse.replace_rows(
                    RAW_SCHEMA,
                    name,
                    frame.to_arrow(),
                    landing.date_predicate(source, window.timezone, warehouse),
                    [window.first, window.last],
                )
                extra = partition_rows(frame, landing.row_dates(source, window.timezone), window)
            context.log.info(
                f"landed {frame.height} rows into {RAW_SCHEMA}.{name} from {', '.join(display_path(f) for f in files)}"
            )
            if ignored:
                context.log.warning(f"ignored columns the spec does not name: {', '.join(sorted(ignored))}")
            return {
                **table_metadata(frame),
                **extra,
                "factory/source_files": dg.MetadataValue.json([str(f) for f in files]),
                **(
                    {IGNORED_COLUMNS: dg.MetadataValue.json(sorted(ignored))}
                    if source.unknown_columns == "ignore"
                    else {}
                ),
            }

        yield from audit_then_publish(
            context, home, gate, frame, publish, files=files, parameters=window.parameters() if window else None
        )

    return _land
