"""Raw assets: land each declared source into the warehouse's `raw` schema, through its gate.

A partitioned source lands the days of the run's window: a day's landing file when there is
one, else the rows of the source file dated that day; the window's rows are replaced in one
transaction, so re-running a day never duplicates it.
"""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from factory_dagster.automation import landing
from factory_dagster.automation.conditions import freshness_policy
from factory_dagster.automation.partitions import Window, partitions_def, window_of
from factory_dagster.gates.gate import Gate
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.products.catalog import RAW_SCHEMA, source_key
from factory_dagster.products.metadata import (
    LINE_TAG,
    column_schema,
    partition_rows,
    spec_version,
    table_metadata,
)
from factory_dagster.products.source_files import (
    POLARS_TYPES,
    IngestionError,
    read_source,
    read_source_file,
    resolve_source_uri,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.errors import display_path
from factory_dagster.spec.models import SourceSpec
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import replace_rows, replace_table


def read_window(spec: FactorySpec, source: SourceSpec, home: FactoryHome, window: Window,
                files: list) -> pl.DataFrame:
    """The rows of a partitioned source for the window's days (landing files take precedence)."""
    day_of = landing.row_dates(source, window.timezone)
    landed = {}
    if source.landing is not None:
        landed = {f.day: f for f in landing.scan(landing.landing_dir(home, source))
                  if f.problem is None and window.first <= f.day <= window.last}
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
                f"a landing file holds the rows of its own day only")
        frames.append(frame)
    if not frames:
        return pl.DataFrame(schema={c: POLARS_TYPES[t] for c, t in source.columns.items()})
    return pl.concat(frames)


def build_source_asset(spec: FactorySpec, name: str, gate: Gate | None = None) -> dg.AssetsDefinition:
    source = spec.sources[name]
    declared = {column: POLARS_TYPES[kind] for column, kind in source.columns.items()}
    key = source_key(name)
    partitions = spec.partitions[source.partition.partitions] if source.partition else None

    @dg.asset(
        key=key,
        group_name=source.group or spec.name,
        owners=[source.owner],
        description=source.description,
        kinds={"duckdb", "polars"},
        tags={**source.tags, LINE_TAG: spec.name},
        code_version=spec_version(source),
        partitions_def=partitions_def(partitions) if partitions else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        freshness_policy=freshness_policy(source.freshness),
        check_specs=[gate.check_spec()] if gate else None,
        output_required=gate is None,
        metadata={
            "dagster/column_schema": column_schema(declared),
            "dagster/table_name": f"warehouse.{RAW_SCHEMA}.{name}",
            "factory/source_file": source.file,
            "factory/primary_key": ", ".join(source.primary_key) or "none",
            **({"factory/landing": f"landing/{source.landing}/<YYYY-MM-DD>.csv|parquet"} if source.landing else {}),
        },
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
            raise dg.Failure(description=f"ingestion failed: {exc}", allow_retries=False,
                             metadata={"quarantine": str(folder)}) from None

        def publish() -> dict[str, object]:
            if window is None:
                replace_table(home.warehouse, RAW_SCHEMA, name, frame.to_arrow())
                extra = {}
            else:
                replace_rows(home.warehouse, RAW_SCHEMA, name, frame.to_arrow(),
                             landing.date_predicate(source, window.timezone), [window.first, window.last])
                extra = partition_rows(frame, landing.row_dates(source, window.timezone), window)
            context.log.info(f"landed {frame.height} rows into {RAW_SCHEMA}.{name} from "
                             f"{', '.join(display_path(f) for f in files)}")
            return {**table_metadata(frame), **extra,
                    "factory/source_files": dg.MetadataValue.json([str(f) for f in files])}

        yield from audit_then_publish(context, home, gate, frame, publish, files=files,
                                      parameters=window.parameters() if window else None)

    return _land
