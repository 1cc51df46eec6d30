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


def relation(spec: FactorySpec, name: str) -> str:
    """The SQL relation of a table product in the warehouse."""
    if name in spec.dbt_models:
        return spec.dbt_models[name].relation
    return f"{quote(RAW_SCHEMA)}.{quote(name)}"
