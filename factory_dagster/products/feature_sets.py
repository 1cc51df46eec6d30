"""Feature set assets: read the source product through Arrow, compute in polars, write parquet."""

import datetime as dt

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from factory_dagster.automation.conditions import follow_upstream, freshness_policy
from factory_dagster.automation.partitions import Window, partitions_def, window_of
from factory_dagster.gates.gate import Gate
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.products.catalog import product_key, relation
from factory_dagster.products.column_lineage import as_metadata, feature_set_lineage
from factory_dagster.products.feature_blocks import (
    FeatureComputationError,
    compile_features,
    source_columns,
)
from factory_dagster.products.metadata import (
    LINE_TAG,
    partition_rows,
    spec_version,
    table_metadata,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.models import FeatureSetSpec
from factory_dagster.storage.datasets import Dataset
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import quote, read_arrow

FEATURES = "features"
DAY_COLUMN = "__factory_partition_day"


def feature_dataset(home: FactoryHome, name: str) -> Dataset:
    return Dataset(home.dataset_dir(FEATURES, name))


def compute_feature_set(spec: FactorySpec, fs: FeatureSetSpec, home: FactoryHome,
                        start: dt.date | None = None, end: dt.date | None = None) -> pl.DataFrame:
    """The features for rows whose timestamp falls in [start, end] (all rows when unbounded).

    Rows up to `lookback_days` before `start` are read too, so windowed features see their past.
    """
    columns = ", ".join(quote(c) for c in source_columns(fs))
    sql = f"select {columns} from {relation(spec, fs.source)}"
    params: list[object] = []
    if start is not None and end is not None:
        # A day of margin each side: an aware timestamp's UTC date may differ from its local day,
        # which the exact filter below decides.
        sql += f" where cast({quote(fs.timestamp)} as date) between ? and ?"
        params = [start - dt.timedelta(days=fs.lookback_days() + 1), end + dt.timedelta(days=1)]
    source = pl.from_arrow(read_arrow(home.warehouse, sql, params)).lazy()
    dimensions = {}
    for feature in fs.features.values():
        if feature.lookup is not None:
            lookup = feature.lookup
            dim_sql = (f"select {quote(lookup.dimension_key)}, {quote(lookup.column)} "
                       f"from {relation(spec, lookup.dimension)}")
            dimensions[lookup.dimension] = pl.from_arrow(read_arrow(home.warehouse, dim_sql))
    zone = spec.partitions[fs.partitions].timezone if fs.partitions else None
    frame = compile_features(fs, source, dimensions, zone)
    if start is not None and end is not None:
        frame = frame.filter(pl.col(fs.timestamp).dt.date().is_between(start, end))
    return frame.collect()


def feature_metadata(frame: pl.DataFrame, fs: FeatureSetSpec) -> dict[str, object]:
    descriptions = {name: f.description for name, f in fs.features.items() if f.description}
    features = fs.output_features()
    null_rates = frame.select(pl.col(features).null_count() / max(frame.height, 1)).row(0, named=True)
    table = "\n".join(f"| {name} | {frame.schema[name]} | {null_rates[name]:.2%} |" for name in features)
    return {
        **table_metadata(frame, descriptions),
        "factory/null_rates": dg.MetadataValue.md("| feature | type | nulls |\n|---|---|---|\n" + table),
    }


def write_partitions(dataset: Dataset, frame: pl.DataFrame, day: pl.Expr, window: Window) -> list[str]:
    """One file per day of the window (an empty day too: re-running it must clear it)."""
    days = frame.with_columns(day.alias(DAY_COLUMN))
    paths = []
    for key, date in zip(window.keys, window.days, strict=True):
        part = days.filter(pl.col(DAY_COLUMN) == date).drop(DAY_COLUMN)
        paths.append(str(dataset.write(part, key)))
    return paths


def build_feature_set_asset(spec: FactorySpec, name: str, gate: Gate | None = None,
                            partitioned_products: dict[str, str] | None = None) -> dg.AssetsDefinition:
    """`partitioned_products`: product name → its partitions name, for the lookback mapping."""
    fs = spec.feature_sets[name]
    partitions = spec.partitions[fs.partitions] if fs.partitions else None
    lineage = as_metadata(feature_set_lineage(spec, name))
    source_dep: dg.AssetKey | dg.AssetDep = product_key(spec, fs.source)
    if partitions is not None and (partitioned_products or {}).get(fs.source) == fs.partitions:
        # Day d reads the source's days d - lookback … d (rolling and lag features look back).
        source_dep = dg.AssetDep(source_dep, partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-fs.lookback_days(), allow_nonexistent_upstream_partitions=True))
    dimensions = {product_key(spec, f.lookup.dimension) for f in fs.features.values() if f.lookup is not None}
    deps = [source_dep, *sorted(dimensions - {product_key(spec, fs.source)}, key=str)]

    @dg.asset(
        key=name,
        deps=deps,
        group_name=fs.group or spec.name,
        owners=[fs.owner],
        description=fs.description,
        kinds={"polars", "parquet"},
        tags={**fs.tags, LINE_TAG: spec.name},
        code_version=spec_version(fs),
        partitions_def=partitions_def(partitions) if partitions else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        automation_condition=follow_upstream(),
        freshness_policy=freshness_policy(fs.freshness),
        check_specs=[gate.check_spec()] if gate else None,
        output_required=gate is None,
        metadata={"factory/entity": fs.entity, "factory/timestamp": fs.timestamp,
                  "factory/labels": ", ".join(fs.labels) or "none", "dagster/column_lineage": lineage},
    )
    def _features(context: AssetExecutionContext, factory: FactoryResource):
        home = factory.paths
        window = window_of(context, partitions) if partitions else None
        try:
            frame = (compute_feature_set(spec, fs, home) if window is None
                     else compute_feature_set(spec, fs, home, window.first, window.last))
        except FeatureComputationError as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        dataset = feature_dataset(home, name)
        day = pl.col(fs.timestamp).dt.date()

        def publish() -> dict[str, object]:
            common = {**feature_metadata(frame, fs), "dagster/column_lineage": lineage}
            if window is None:
                return {**common, "dagster/uri": str(dataset.write(frame))}
            write_partitions(dataset, frame, day, window)
            return {**common, **partition_rows(frame, day, window), "dagster/uri": str(dataset.directory)}

        yield from audit_then_publish(context, home, gate, frame, publish,
                                      parameters=window.parameters() if window else None)

    return _features
