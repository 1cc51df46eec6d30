"""The embedded DuckDB warehouse: short-lived connections, atomic table swaps, Arrow reads."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOCK_WAIT_SECONDS = 120.0


def quote(identifier: str) -> str:
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"not a plain SQL identifier: {identifier!r}")
    return f'"{identifier}"'


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


def read_arrow(path: Path, sql: str, params: Sequence[object] | None = None) -> pa.Table:
    """Run a query and return Arrow (zero-copy into polars with `read_frame`)."""
    with connect(path) as con:
        return con.sql(sql, params=list(params) if params else None).to_arrow_table()


def read_frame(path: Path, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
    """Run a query into a polars frame, through Arrow."""
    return pl.DataFrame(read_arrow(path, sql, params))


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def replace_table(path: Path, schema: str, table: str, data: pa.Table) -> int:
    """Replace `schema.table` with `data` in one transaction: readers see the old or the new table."""
    target = f"{quote(schema)}.{quote(table)}"
    with connect(path) as con:
        con.execute(f"create schema if not exists {quote(schema)}")
        con.register("incoming", data)
        con.execute("begin transaction")
        try:
            con.execute(f"create or replace table {target} as select * from incoming")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.unregister("incoming")
    return data.num_rows


def replace_rows(path: Path, schema: str, table: str, data: pa.Table, where: str, params: list[object]) -> int:
    """Delete the rows matching `where`, insert `data`, in one transaction (a partition swap)."""
    target = f"{quote(schema)}.{quote(table)}"
    with connect(path) as con:
        con.execute(f"create schema if not exists {quote(schema)}")
        con.register("incoming", data)
        con.execute("begin transaction")
        try:
            if table_exists(con, schema, table):
                con.execute(f"delete from {target} where {where}", params)
                con.execute(f"insert into {target} by name select * from incoming")
            else:
                con.execute(f"create table {target} as select * from incoming")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        finally:
            con.unregister("incoming")
    return data.num_rows
