"""The only place the factory touches what Dagster, dagster-dbt or dbt do not publish.

Everything else uses public APIs. What remains here has no public equivalent; each use is named
in `PRIVATE_APIS`, and `tests/test_compat.py` fails naming the one an upgrade removed.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
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
    "dagster_dbt.DbtCliResource._cli_version": "the version of the dbt it runs, which dagster-dbt asks `dbt --version` for (2 s, and a request to PyPI)",
    "dagster._core.storage.event_log.SqliteEventLogStorage": "the embedded instance's event log, extended by BatchingSqliteEventLogStorage",
    "dagster._core.storage.event_log.SqliteEventLogStorage.prepare_insert_event": "its statement for one event's row",
    "dagster._core.storage.event_log.SqliteEventLogStorage.prepare_insert_event_batch": "the same for many rows in one statement",
    "dagster._core.storage.event_log.SqliteEventLogStorage._store_asset_event_tags": "indexes each event's partition tags (what the UI's partition status reads)",
    "dagster._core.storage.event_log.SqliteEventLogStorage._store_asset_event": "updates the asset's latest-event row",
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


def batching_sqlite_event_log_storage() -> type:
    """`BatchingSqliteEventLogStorage`, made when an instance's `dagster.yaml` names it."""
    from dagster._core.events import DagsterEventType
    from dagster._core.storage.event_log import SqliteEventLogStorage

    batchable = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION}

    class _Storage(SqliteEventLogStorage):
        __doc__ = BATCHING_DOC

        @classmethod
        def from_config_value(cls, inst_data: Any, config_value: Mapping[str, Any]) -> Any:
            return cls(inst_data=inst_data, **config_value)  # Dagster's returns its own class, not cls

        def store_event_batch(self, events: Sequence[Any]) -> None:
            kinds = {event.get_dagster_event().event_type for event in events}
            runs = {event.run_id for event in events}
            if len(runs) != 1 or len(kinds) != 1 or not kinds <= batchable:
                super().store_event_batch(events)  # one by one, as Dagster's SQLite storage does
                return
            with self.run_connection(events[0].run_id) as conn:
                conn.execute(self.prepare_insert_event_batch(events))
            with self.index_transaction() as conn:
                ids = [inserted_id(conn.execute(self.prepare_insert_event(event))) for event in events]
                self._store_asset_event_tags(conn, events, ids)
                self._store_asset_event(conn, events[-1], ids[-1])  # the asset's latest: the batch's last

    def inserted_id(result: Any) -> int:
        key = result.inserted_primary_key
        assert key is not None and key[0] is not None, "SQLite returned no id for an inserted event"
        return int(key[0])

    _Storage.__name__ = _Storage.__qualname__ = "BatchingSqliteEventLogStorage"
    _Storage.__module__ = __name__
    return _Storage


BATCHING_DOC = """Dagster's SQLite event log, writing a range run's materializations in two transactions.

A run over a window of N daily partitions records N materializations of each asset. Dagster's
SQLite storage writes each alone (a run-shard row, then an index-shard row, its tags and the
asset's row, each on a new connection and commit: ≈8 ms an event, most of a flights build's
bookkeeping). With `DAGSTER_EVENT_BATCH_SIZE` set (the factory sets it), Dagster hands one step
output's events to `store_event_batch`; dagster-postgres writes those in bulk, and this does the
same on SQLite: one run-shard insert of every row, one index-shard transaction for the rows,
their tags and the asset's latest event (as dagster-postgres does: the batch's last).
"""


def __getattr__(name: str) -> Any:
    # Dagster loads the class by name from `dagster.yaml` (module: factory_dagster.compat); built
    # on first use so that importing this module never imports Dagster's storage internals.
    if name == "BatchingSqliteEventLogStorage":
        cls = batching_sqlite_event_log_storage()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def dbt_cli_resource(project_dir: Any, executable: str) -> Any:
    """dagster-dbt's `DbtCliResource` for `executable`, told its version when it is the dbt-core
    installed beside this interpreter (the one dagster-dbt imports).

    dagster-dbt runs `dbt --version` once per resource (each run in process, each step on a
    worker) to learn which dbt it drives: ≈2 s of a dbt step, and that command asks PyPI for
    the latest release (a request at run time, 1 s timeout). For the dbt-core installed here the
    answer is this environment's package version. Any other executable is asked as before.
    """
    from dagster_dbt import DbtCliResource

    beside = Path(sys.executable).with_name("dbt")
    if Path(executable).absolute() != beside.absolute():
        return DbtCliResource(project_dir=project_dir, dbt_executable=executable)
    return _installed_dbt_cli()(project_dir=project_dir, dbt_executable=executable)


@functools.cache
def _installed_dbt_cli() -> type:
    from importlib.metadata import version

    from dagster_dbt import DbtCliResource
    from packaging.version import parse

    class InstalledDbtCliResource(DbtCliResource):
        """`DbtCliResource` running the dbt-core installed beside this interpreter."""

        @functools.cached_property
        def _cli_version(self) -> Any:
            return parse(version("dbt-core"))

    return InstalledDbtCliResource
