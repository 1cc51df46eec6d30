"""The feature set kind: features computed in polars from one data product, one row per entity
(one column, or several: `entity: [ticker, date]`).

It reads its source through Arrow, computes the blocks (`feature_blocks.py`), and writes parquet
(one file per partition). At load it checks that every name exists, that each block's operands
have a kind it can use, and that no kept feature carries a label of its own row (target leakage).
"""

# No `from __future__ import annotations`: Dagster reads the asset function's resource annotations.
import datetime as dt

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field, field_validator

from factory_dagster.automation.conditions import follow_upstream
from factory_dagster.automation.partitions import Window, window_of
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.markdown import markdown_table
from factory_dagster.products import feature_blocks
from factory_dagster.products.feature_blocks import DAY, TEMPORAL, FeatureComputationError, FeatureSpec
from factory_dagster.products.kind import (
    BuildableKind,
    BuildContext,
    ColumnDeps,
    code_version,
    lineage_metadata,
    product_asset,
)
from factory_dagster.products.metadata import partition_rows, table_metadata
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.column_kinds import Kind
from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.product import ProductSpec
from factory_dagster.spec.references import check_partitions_name
from factory_dagster.spec.types import Name
from factory_dagster.storage.datasets import Dataset
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import Warehouse, quote

FEATURES = "features"
PARTITION_DAY = "__factory_partition_day"


class FeatureSetSpec(ProductSpec):
    """Features computed in polars from one data product, one row per entity.

    The entity is the key of a row: one column, or a list of columns keying it together (the
    timestamp may be one of them).
    """

    source: Name
    entity: Name | list[Name]
    timestamp: Name
    labels: list[Name] = []
    features: dict[Name, FeatureSpec] = Field(min_length=1)
    partitions: Name | None = None  # partitioned by the local day of `timestamp`

    @field_validator("entity")
    @classmethod
    def _distinct_columns(cls, entity: str | list[str]) -> str | list[str]:
        if isinstance(entity, list):
            if not entity:
                raise ValueError("name at least one column")
            twice = sorted({c for c in entity if entity.count(c) > 1})
            if twice:
                raise ValueError(f"{', '.join(twice)} named twice")
        return entity

    def entity_columns(self) -> list[str]:
        """The columns that key a row, in the order declared."""
        return [self.entity] if isinstance(self.entity, str) else list(self.entity)

    def key_columns(self) -> list[str]:
        """The entity's columns then the timestamp, each once (the timestamp may key the row)."""
        return list(dict.fromkeys([*self.entity_columns(), self.timestamp]))

    def output_features(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.keep]

    def output_columns(self) -> list[str]:
        """What the feature set writes: entity, timestamp, labels, then the kept features."""
        return [*self.key_columns(), *self.labels, *self.output_features()]

    def lookback_days(self) -> int:
        return max((f.lookback_days() for f in self.features.values()), default=0)


class FeatureSetKind(BuildableKind):
    section = "feature_sets"
    spec_model = FeatureSetSpec
    label = "feature set"
    role = "feature_set"

    def columns(self, spec: FactorySpec, name: str) -> dict[str, Kind]:
        kinds, _ = infer(spec, name)
        return {c: kinds.get(c, "unknown") for c in spec.feature_sets[name].output_columns()}

    def row_key(self, spec: FactorySpec, name: str) -> list[str]:
        return spec.feature_sets[name].entity_columns()

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        _, errors = infer(spec, name)
        fs = spec.feature_sets[name]
        check_partitions_name(spec, "feature_sets", name, ("partitions",), fs.partitions, errors)
        return errors

    def lineage(self, spec: FactorySpec, name: str) -> ColumnDeps:
        fs = spec.feature_sets[name]
        source = spec.key_of(fs.source)
        resolved: ColumnDeps = {}

        def operand(column: str) -> list[tuple[str, str]]:
            return resolved[column] if column in resolved else [(source, column)]

        for feature_name, feature in fs.features.items():
            deps: list[tuple[str, str]] = []
            for column in feature.operands():
                deps += operand(column)
            if feature.lookup is not None:
                dimension = spec.key_of(feature.lookup.dimension)
                deps += [(dimension, feature.lookup.column), (dimension, feature.lookup.dimension_key)]
            resolved[feature_name] = list(dict.fromkeys(deps))
        lineage: ColumnDeps = {c: [(source, c)] for c in (*fs.key_columns(), *fs.labels)}
        lineage.update({f: resolved[f] for f in fs.output_features()})
        return lineage

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_feature_set_asset(spec, name, context) for name in names]


KIND = FeatureSetKind()


def infer(spec: FactorySpec, name: str) -> tuple[dict[str, Kind], list[SpecError]]:
    """The kind of every column the feature set sees and makes, and what is wrong with it: names
    that do not exist, operands of a kind their block cannot use, labels leaking into features."""
    fs = spec.feature_sets[name]
    products = spec.readable_products()
    errors: list[SpecError] = []

    def fail(path: tuple, reason: str, at: tuple = ()) -> None:
        errors.append(spec.error("feature_sets", name, path, reason, at))

    if fs.source not in products:
        fail(("source",), f"unknown data product '{fs.source}' (known: {known(products)})")
        return {}, errors
    source_kinds = products[fs.source]
    columns = list(source_kinds) if source_kinds is not None else None
    kinds: dict[str, Kind] = dict(source_kinds or {})
    named = [
        (("entity",) if isinstance(fs.entity, str) else ("entity", i), c) for i, c in enumerate(fs.entity_columns())
    ]
    for path, value in [*named, (("timestamp",), fs.timestamp)]:
        if columns is not None and value not in columns:
            fail(path, f"'{value}' is not a column of {fs.source} (columns: {known(columns)})")
    if kinds.get(fs.timestamp, "unknown") not in (*TEMPORAL, "unknown"):
        fail(("timestamp",), f"'{fs.timestamp}' is {kinds[fs.timestamp]}, not a date or timestamp")
    for index, label in enumerate(fs.labels):
        if columns is not None and label not in columns:
            fail(("labels", index), f"'{label}' is not a column of {fs.source} (columns: {known(columns)})")
    if not fs.output_features():
        fail(("features",), "every feature is keep: false: the feature set would output no feature")
    carried: dict[str, set[str]] = {label: {label} for label in fs.labels}  # same-row labels behind a name
    defined: list[str] = []
    for feature_name, feature in fs.features.items():
        where = ("features", feature_name, feature.kind)
        if feature_name in (*fs.key_columns(), *fs.labels):
            fail(("features", feature_name), f"feature '{feature_name}' clashes with the entity, timestamp or a label")
        missing = [o for o in feature.operands() if o not in defined and columns is not None and o not in columns]
        for operand in missing:
            fail(
                where,
                f"unknown column or feature '{operand}' (columns of {fs.source}: {known(columns or [])}; "
                f"features declared before: {known(defined)})",
            )
        dimension_kinds = None
        if feature.lookup is not None:
            lookup = feature.lookup
            if lookup.dimension not in products:
                fail((*where, "dimension"), f"unknown data product '{lookup.dimension}' (known: {known(products)})")
                missing = ["dimension"]
            else:
                dimension_kinds = products[lookup.dimension]
                for key in ("dimension_key", "column"):
                    value = getattr(lookup, key)
                    if dimension_kinds is not None and value not in dimension_kinds:
                        fail(
                            (*where, key),
                            f"'{value}' is not a column of {lookup.dimension} (columns: {known(dimension_kinds)})",
                        )
                        missing = [key]
        if not missing:
            block = feature.block
            kinds[feature_name], problem = block.result(
                {o: kinds.get(o, "unknown") for o in block.operands()}, dimension_kinds
            )
            if problem:
                fail(where, problem)
        leaked = set() if feature.block.windowed else set().union(*(carried.get(o, set()) for o in feature.operands()))
        carried[feature_name] = leaked
        if feature.keep and leaked:
            fail(
                ("features", feature_name),
                f"feature '{feature_name}' is computed from the label {', '.join(sorted(leaked))} of its own row: "
                "it leaks the target (use it through rolling or lag, or set keep: false)",
            )
        defined.append(feature_name)
    return kinds, errors


def source_columns(fs: FeatureSetSpec) -> list[str]:
    """The columns of the source product the feature set reads."""
    needed: list[str] = [*fs.key_columns(), *fs.labels]
    defined: set[str] = set()
    for name, feature in fs.features.items():
        for operand in feature.operands():
            if operand not in defined and operand not in needed:
                needed.append(operand)
        defined.add(name)
    return needed


def in_zone(frame: pl.LazyFrame, timezone: str | None) -> pl.LazyFrame:
    """Time-zone-aware columns shown in `timezone`: their days and date parts are that zone's.

    Naive timestamps are wall-clock times already and stay as they are.
    """
    if timezone is None:
        return frame
    aware = [c for c, t in frame.collect_schema().items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(pl.col(aware).dt.convert_time_zone(timezone)) if aware else frame


def compile_features(
    fs: FeatureSetSpec,
    source: pl.LazyFrame,
    dimensions: feature_blocks.Dimensions | None = None,
    timezone: str | None = None,
) -> pl.LazyFrame:
    """The feature set as a lazy frame: entity, timestamp, labels, then the kept features.

    `timezone` (the partitions' zone) decides which day, hour, ... an aware timestamp is on.
    """
    frame = in_zone(source, timezone).with_columns(pl.col(fs.timestamp).dt.date().alias(DAY))
    for name, feature in fs.features.items():
        frame = feature.block.apply(frame, name, dimensions or {})
    return frame.select(fs.output_columns()).sort(list(dict.fromkeys([fs.timestamp, *fs.entity_columns()])))


def feature_dataset(home: FactoryHome, name: str) -> Dataset:
    return Dataset(home.dataset_dir(FEATURES, name))


def compute_feature_set(
    spec: FactorySpec,
    fs: FeatureSetSpec,
    warehouse: Warehouse,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> pl.DataFrame:
    """The features for rows whose timestamp falls in [start, end] (all rows when unbounded).

    Rows up to `lookback_days` before `start` are read too, so windowed features see their past.
    """
    columns = ", ".join(quote(c) for c in source_columns(fs))
    sql = f"select {columns} from {warehouse.model_relation(relation(spec, fs.source))}"
    params: list[object] = []
    if start is not None and end is not None:
        # A day of margin each side: an aware timestamp's UTC date may differ from its local day,
        # which the exact filter below decides.
        sql += f" where {warehouse.between(f'cast({quote(fs.timestamp)} as date)')}"
        params = [start - dt.timedelta(days=fs.lookback_days() + 1), end + dt.timedelta(days=1)]
    source = warehouse.read_frame(sql, params).lazy()
    dimensions = {}
    for feature in fs.features.values():
        if feature.lookup is not None:
            lookup = feature.lookup
            dim_sql = (
                f"select {quote(lookup.dimension_key)}, {quote(lookup.column)} "
                f"from {warehouse.model_relation(relation(spec, lookup.dimension))}"
            )
            dimensions[lookup.dimension] = warehouse.read_frame(dim_sql)
    zone = spec.partitions[fs.partitions].timezone if fs.partitions else None
    frame = compile_features(fs, source, dimensions, zone)
    if start is not None and end is not None:
        frame = frame.filter(pl.col(fs.timestamp).dt.date().is_between(start, end))
    return frame.collect()


def relation(spec: FactorySpec, name: str) -> str:
    """The SQL relation of a product a feature set reads, as its kind names it."""
    kind = spec.kind_of(name)
    return kind.relation(spec, name)  # type: ignore[union-attr]  # readable kinds have a relation


def feature_metadata(frame: pl.DataFrame, fs: FeatureSetSpec) -> dict[str, object]:
    descriptions = {name: f.description for name, f in fs.features.items() if f.description}
    features = fs.output_features()
    null_rates = frame.select(pl.col(features).null_count() / max(frame.height, 1)).row(0, named=True)
    nulls = markdown_table(
        ["feature", "type", "nulls"], [(f, frame.schema[f], f"{null_rates[f]:.2%}") for f in features]
    )
    return {**table_metadata(frame, descriptions), "factory/null_rates": dg.MetadataValue.md(nulls)}


def write_partitions(dataset: Dataset, frame: pl.DataFrame, day: pl.Expr, window: Window) -> list[str]:
    """One file per day of the window (an empty day too: re-running it must clear it)."""
    days = frame.with_columns(day.alias(PARTITION_DAY))
    paths = []
    for key, date in zip(window.keys, window.days, strict=True):
        part = days.filter(pl.col(PARTITION_DAY) == date).drop(PARTITION_DAY)
        paths.append(str(dataset.write(part, key)))
    return paths


def build_feature_set_asset(spec: FactorySpec, name: str, context: BuildContext) -> dg.AssetsDefinition:
    fs: FeatureSetSpec = spec.feature_sets[name]
    gate = context.gates.get(name)
    partitions = spec.partitions[fs.partitions] if fs.partitions else None
    lineage = lineage_metadata(KIND.lineage(spec, name))
    source_key = dg.AssetKey.from_user_string(spec.key_of(fs.source))
    source_dep: dg.AssetKey | dg.AssetDep = source_key
    if partitions is not None and context.partitioned.get(fs.source) == fs.partitions:
        # Day d reads the source's days d - lookback … d (rolling and lag features look back).
        source_dep = dg.AssetDep(
            source_key,
            partition_mapping=dg.TimeWindowPartitionMapping(
                start_offset=-fs.lookback_days(), allow_nonexistent_upstream_partitions=True
            ),
        )
    dimensions = {
        dg.AssetKey.from_user_string(spec.key_of(f.lookup.dimension))
        for f in fs.features.values()
        if f.lookup is not None
    }
    blocks = sorted({type(f.block) for f in fs.features.values()}, key=lambda block: block.__name__)
    version = code_version([fs], code=[build_feature_set_asset, compute_feature_set, compile_features, *blocks])

    @product_asset(
        spec,
        fs,
        key=name,
        kinds={"polars", "parquet"},
        version=version,
        partitions=partitions,
        gate=gate,
        deps=[source_dep, *sorted(dimensions - {source_key}, key=str)],
        automation=follow_upstream(),
        metadata={
            "factory/entity": ", ".join(fs.entity_columns()),
            "factory/timestamp": fs.timestamp,
            "factory/labels": ", ".join(fs.labels) or "none",
            "dagster/column_lineage": lineage,
        },
    )
    def _features(context: AssetExecutionContext, factory: FactoryResource):
        home = factory.paths
        window = window_of(context, partitions) if partitions else None
        try:
            frame = (
                compute_feature_set(spec, fs, factory.warehouse)
                if window is None
                else compute_feature_set(spec, fs, factory.warehouse, window.first, window.last)
            )
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

        yield from audit_then_publish(
            context, home, gate, frame, publish, parameters=window.parameters() if window else None
        )

    return _features
