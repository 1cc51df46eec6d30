"""Raw assets: land each declared source file into the warehouse's `raw` schema, through its gate."""

import dagster as dg
from dagster import AssetExecutionContext

from factory_dagster.gates.gate import Gate
from factory_dagster.gates.publish import audit_then_publish
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
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import replace_table


def build_source_asset(spec: FactorySpec, name: str, gate: Gate | None = None) -> dg.AssetsDefinition:
    source = spec.sources[name]
    declared = {column: POLARS_TYPES[kind] for column, kind in source.columns.items()}
    key = source_key(name)

    @dg.asset(
        key=key,
        group_name=source.group or "raw",
        owners=[source.owner],
        description=source.description,
        kinds={"duckdb", "polars"},
        tags=source.tags,
        code_version=spec_version(source),
        check_specs=[gate.check_spec()] if gate else None,
        output_required=gate is None,
        metadata={
            "dagster/column_schema": column_schema(declared),
            "dagster/table_name": f"warehouse.{RAW_SCHEMA}.{name}",
            "factory/source_file": source.file,
            "factory/primary_key": ", ".join(source.primary_key) or "none",
        },
    )
    def _land(context: AssetExecutionContext, factory: FactoryResource):
        home = factory.paths
        path = resolve_source_uri(source.file, spec.spec_dir)
        try:
            frame = read_source_file(path, source.columns, source.format, source.null_values)
        except IngestionError as exc:
            folder = quarantine(home, key.to_user_string(), context.run.run_id, str(exc), files=[path])
            raise dg.Failure(description=f"ingestion failed: {exc}", allow_retries=False,
                             metadata={"quarantine": str(folder)}) from None

        def publish() -> dict[str, object]:
            replace_table(home.warehouse, RAW_SCHEMA, name, frame.to_arrow())
            context.log.info(f"landed {frame.height} rows from {path} into {RAW_SCHEMA}.{name}")
            return {**table_metadata(frame), "factory/source_path": str(path)}

        yield from audit_then_publish(context, home, gate, frame, publish, files=[path])

    return _land
