"""Raw assets: land each declared source file into the warehouse's `raw` schema."""

import dagster as dg
from dagster import AssetExecutionContext

from factory_dagster.products.catalog import RAW_SCHEMA, source_key
from factory_dagster.products.metadata import column_schema, spec_version, table_metadata
from factory_dagster.products.source_files import (
    POLARS_TYPES,
    IngestionError,
    read_source_file,
    resolve_source_uri,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.warehouse import replace_table


def build_source_asset(spec: FactorySpec, name: str) -> dg.AssetsDefinition:
    source = spec.sources[name]
    declared = {column: POLARS_TYPES[kind] for column, kind in source.columns.items()}

    @dg.asset(
        key=source_key(name),
        group_name=source.group or "raw",
        owners=[source.owner],
        description=source.description,
        kinds={"duckdb", "polars"},
        tags=source.tags,
        code_version=spec_version(source),
        metadata={
            "dagster/column_schema": column_schema(declared),
            "dagster/table_name": f"warehouse.{RAW_SCHEMA}.{name}",
            "factory/source_file": source.file,
            "factory/primary_key": ", ".join(source.primary_key) or "none",
        },
    )
    def _land(context: AssetExecutionContext, factory: FactoryResource) -> dg.MaterializeResult:
        try:
            path = resolve_source_uri(source.file, spec.spec_dir)
            frame = read_source_file(path, source.columns, source.format, source.null_values)
        except IngestionError as exc:
            raise dg.Failure(description=f"ingestion failed: {exc}", allow_retries=False) from None
        replace_table(factory.paths.warehouse, RAW_SCHEMA, name, frame.to_arrow())
        context.log.info(f"landed {frame.height} rows from {path} into {RAW_SCHEMA}.{name}")
        return dg.MaterializeResult(metadata={**table_metadata(frame), "factory/source_path": str(path)})

    return _land
