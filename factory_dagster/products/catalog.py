"""Where each product of a line lives: its Dagster asset key and, for tables, its SQL relation."""

from __future__ import annotations

import dagster as dg

from factory_dagster.spec import FactorySpec
from factory_dagster.storage.warehouse import quote

RAW_SCHEMA = "raw"


def source_key(name: str) -> dg.AssetKey:
    # dagster-dbt maps dbt source `raw.<table>` to this key, so dbt models depend on raw assets.
    return dg.AssetKey([RAW_SCHEMA, name])


def product_key(spec: FactorySpec, name: str) -> dg.AssetKey:
    """The asset key of a data product a feature set may read (a dbt model or a raw source)."""
    if name in spec.dbt_models:
        return dg.AssetKey([name])
    if name in spec.sources:
        return source_key(name)
    return dg.AssetKey([name])


PREDICTIONS_SCHEMA = "predictions"


def relation(spec: FactorySpec, name: str) -> str:
    """The SQL relation of a table product in the warehouse (predictions: a view over parquet)."""
    if name in spec.dbt_models:
        return spec.dbt_models[name].relation
    if name in spec.predictions:
        return f"{quote(PREDICTIONS_SCHEMA)}.{quote(name)}"
    return f"{quote(RAW_SCHEMA)}.{quote(name)}"


def asset_columns(spec: FactorySpec) -> dict[str, set[str] | None]:
    """Every table-like asset of the line with its columns (None when not known statically)."""
    columns: dict[str, set[str] | None] = {}
    for name, source in spec.sources.items():
        columns[source_key(name).to_user_string()] = set(source.columns)
    for name, model in spec.dbt_models.items():
        columns[name] = set(model.columns) or None
    for name in spec.feature_sets:
        columns[name] = set(spec.feature_set_columns(name))
    for name in spec.predictions:
        columns[name] = spec.prediction_columns(name)
    return columns
