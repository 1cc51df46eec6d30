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
    "dagster_celery.make_app.make_app": "the Celery app of dagster-celery's queues and routes, for `factory worker` (its CLI writes the broker URL into a file)",
    "dagster_celery.tasks.create_task": "registers the task that executes one step on that app",
    "dagster_postgres.utils.DagsterPostgresException": "what dagster-postgres raises once its own reconnect retries give up",
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


def celery_worker_app(broker: str, backend: str) -> Any:
    """The Celery app a dagster-celery executor sends steps to, with its step task registered.

    dagster-celery publishes only its executor and a CLI that writes the broker URL (with its
    password) into a config file; `factory worker` builds the same app in memory instead.
    """
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    app = make_app({"broker": broker, "backend": backend, "include": [], "config_source": None})
    app.conf.update(worker_prefetch_multiplier=1)  # a worker takes one step at a time per process
    create_task(app)
    return app


def instance_connection_errors() -> tuple[type[Exception], ...]:
    """What a Dagster instance's storage raises when its database drops or refuses the connection:
    SQLAlchemy's `OperationalError`, and dagster-postgres' own error after its retries."""
    from sqlalchemy.exc import OperationalError

    try:
        from dagster_postgres.utils import DagsterPostgresException
    except ImportError:  # an instance without dagster-postgres: SQLite's errors only
        return (OperationalError,)
    return (OperationalError, DagsterPostgresException)
