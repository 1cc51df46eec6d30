"""The only place the factory touches what Dagster, dagster-dbt or dbt do not publish.

Everything else uses public APIs. What remains here has no public equivalent; each use is named
in `PRIVATE_APIS`, and `tests/test_compat.py` fails naming the one an upgrade removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg

if TYPE_CHECKING:  # the type of `Definitions.resolve_asset_graph()`; only for annotations
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph
else:
    AssetGraph = Any

PRIVATE_APIS = {
    "dbt.adapters.duckdb.connections.DuckDBConnectionManager._LOCK": "guards the in-process DuckDB handle dbt-duckdb keeps after dagster-dbt fetches metadata",
    "dbt.adapters.duckdb.connections.DuckDBConnectionManager._ENV": "that handle: closed so the factory's own DuckDB connections can open the same file",
}


def asset_graph(
    assets: Sequence[dg.AssetsDefinition | dg.AssetChecksDefinition], resources: Mapping[str, Any]
) -> AssetGraph:
    """The asset graph of some assets and checks (with the resources they require), through the
    public `Definitions` API."""
    return dg.Definitions(
        assets=[a for a in assets if not isinstance(a, dg.AssetChecksDefinition)],
        asset_checks=[a for a in assets if isinstance(a, dg.AssetChecksDefinition)],
        resources=dict(resources),
    ).resolve_asset_graph()


def release_duckdb_adapter_connection() -> None:
    """Close the DuckDB handle dagster-dbt's in-process adapter keeps after fetching metadata.

    DuckDB refuses a second in-process connection to the same file with another configuration,
    so the factory's own reads after a dbt step would fail while that handle lives. dbt-duckdb
    has no public call for this (see PRIVATE_APIS).
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing shared with the factory's DuckDB connections
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if environment is not None:
        environment.close()
