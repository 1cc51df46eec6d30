"""The embedded DuckDB warehouse: short-lived connections, atomic table swaps, Arrow reads."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from factory_dagster.storage.warehouse import Warehouse, quote

LOCK_WAIT_SECONDS = 120.0


@contextmanager
def connect(path: Path, wait: float = LOCK_WAIT_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse file, waiting while another process (dbt, a run) holds it.

    DuckDB allows one writing process per file; runs that overlap queue here instead of failing.
    Connections are always read-write: within one process DuckDB refuses to mix configurations,
    and dagster-dbt keeps a read-write connection open after a dbt step.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    # Time-zone-aware values cast and export the same on every machine (DuckDB defaults to the local zone).
    con.execute("set TimeZone = 'UTC'")
    try:
        yield con
    finally:
        con.close()


def _table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


class DuckDBWarehouse(Warehouse):
    """The DuckDB file under the factory home (the `embedded` profile); dbt's `local` target."""

    dbt_target = "local"

    def __init__(self, path: Path):
        self.path = path

    @property
    def namespace(self) -> str:
        return f"duckdb://{self.path}"

    def param(self, position: int) -> str:
        return "?"

    def read_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        with connect(self.path) as con:
            return con.sql(sql, params=list(params) if params else None).to_arrow_table()

    def relation_exists(self, relation: str) -> bool:
        """Never creates the warehouse file to answer."""
        return self.path.exists() and super().relation_exists(relation)

    def table_exists(self, schema: str, table: str) -> bool:
        with connect(self.path) as con:
            return _table_exists(con, schema, table)

    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        target = f"{quote(schema)}.{quote(table)}"
        with self._writing(schema, data) as con:
            con.execute(f"create or replace table {target} as select * from incoming")
        return data.num_rows

    def replace_rows(self, schema: str, table: str, data: pa.Table, where: str, params: Sequence[object]) -> int:
        target = f"{quote(schema)}.{quote(table)}"
        with self._writing(schema, data) as con:
            if _table_exists(con, schema, table):
                con.execute(f"delete from {target} where {where}", list(params))
                con.execute(f"insert into {target} by name select * from incoming")
            else:
                con.execute(f"create table {target} as select * from incoming")
        return data.num_rows

    def publish_parquet(self, schema: str, name: str, files: Sequence[Path]) -> None:
        """A view over the files: DuckDB reads parquet where it lies, nothing is copied."""
        listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
        with connect(self.path) as con:
            con.execute(f"create schema if not exists {quote(schema)}")
            con.execute(
                f"create or replace view {quote(schema)}.{quote(name)} as "
                f"select * from read_parquet([{listed}], union_by_name = true)"
            )

    @contextmanager
    def _writing(self, schema: str, data: pa.Table) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction with `data` registered as `incoming`; rolled back on any error."""
        with connect(self.path) as con:
            con.execute(f"create schema if not exists {quote(schema)}")
            con.register("incoming", data)
            con.execute("begin transaction")
            try:
                yield con
                con.execute("commit")
            except Exception:
                con.execute("rollback")
                raise
            finally:
                con.unregister("incoming")
