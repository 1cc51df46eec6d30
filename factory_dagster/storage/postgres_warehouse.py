"""The PostgreSQL warehouse (the `production` profile): Arrow in and out through ADBC.

Reads come back through ADBC's binary COPY as Arrow; writes bulk-load the rows with ADBC ingest
(COPY) into a temporary staging table and swap them in within the same transaction, so readers
see the old rows or the new ones. Writers of one table take a transaction-scoped advisory lock on
it: two runs replacing overlapping windows queue instead of interleaving their deletes and
inserts (PostgreSQL's read-committed delete would not see the other's fresh rows and duplicate
them). Sessions run in UTC, as the embedded warehouse's do.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from factory_dagster.storage.profile import PostgresSettings
from factory_dagster.storage.warehouse import LOCAL_SCHEMA, Warehouse, quote, relation_parts

UTC_SESSION = "options=-c%20TimeZone%3DUTC"


class WarehouseUnreachable(RuntimeError):
    """The warehouse refused or dropped the connection; the message is one line naming it."""


class PostgresWarehouse(Warehouse):
    """A schema-per-layer warehouse on one PostgreSQL database; dbt's `postgres` target."""

    dbt_target = "postgres"

    def __init__(self, settings: PostgresSettings):
        self.settings = settings

    @property
    def namespace(self) -> str:
        return f"postgres://{self.settings.host}:{self.settings.port}"

    def param(self, position: int) -> str:
        return f"${position}"

    def lineage_name(self, relation: str) -> str:
        schema, table = relation_parts(self.model_relation(relation))
        return f"{self.settings.dbname}.{schema}.{table}"

    def model_relation(self, relation: str) -> str:
        """dbt's default schema naming: the `local` target's `main` (or `main_<custom>`) becomes the
        `postgres` target's schema (or `<schema>_<custom>`)."""
        schema, table = relation_parts(relation)
        if schema == LOCAL_SCHEMA or schema.startswith(LOCAL_SCHEMA + "_"):
            schema = self.settings.schema + schema[len(LOCAL_SCHEMA) :]
        return f"{quote(schema)}.{quote(table)}"

    def dbt_relation(self, relation: str) -> tuple[str, str, str]:
        return (self.settings.dbname, *relation_parts(self.model_relation(relation)))

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """An ADBC connection in UTC, in a transaction (committed by the caller). Imported here:
        the driver is the `production` extra, which the embedded profile never needs."""
        import adbc_driver_postgresql.dbapi

        try:
            con = adbc_driver_postgresql.dbapi.connect(f"{self.settings.uri()}?{UTC_SESSION}")
        except Exception as exc:  # the driver's error names libpq's reason on its first line
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise WarehouseUnreachable(
                f"PostgreSQL warehouse {self.settings.describe()} unreachable ({reason}): "
                f"check the server and the {self.settings.prefix}* variables"
            ) from None
        try:
            yield con
        finally:
            con.close()

    def read_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        with self.connect() as con, con.cursor() as cur:
            cur.execute(sql, list(params) if params else None)
            return cur.fetch_arrow_table()

    def table_exists(self, schema: str, table: str) -> bool:
        found = self.read_arrow("select to_regclass($1) is not null as found", [f"{quote(schema)}.{quote(table)}"])
        return bool(found.column("found")[0].as_py())

    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        """The table keeps its identity when its columns stay (views dbt built on it survive); a
        table whose columns changed is dropped with what depends on it, which dbt rebuilds."""
        target = f"{quote(schema)}.{quote(table)}"
        with self._writing(schema, table, data) as (cur, stage):
            if sorted(_columns(cur, target)) == sorted(_columns(cur, stage)):
                cur.execute(f"delete from {target}")
                _insert(cur, target, stage, data)
            else:
                cur.execute(f"drop table if exists {target} cascade")
                cur.execute(f"create table {target} as select * from {stage}")
        return data.num_rows

    def replace_rows(self, schema: str, table: str, data: pa.Table, where: str, params: Sequence[object]) -> int:
        target = f"{quote(schema)}.{quote(table)}"
        with self._writing(schema, table, data) as (cur, stage):
            if _columns(cur, target):
                cur.execute(f"delete from {target} where {where}", list(params))
                _insert(cur, target, stage, data)
            else:
                cur.execute(f"create table {target} as select * from {stage}")
        return data.num_rows

    def publish_parquet(self, schema: str, name: str, files: Sequence[Path]) -> None:
        """A table of the files' rows: PostgreSQL cannot read parquet where it lies."""
        frames = [pl.read_parquet(f) for f in files]
        self.replace_table(schema, name, pl.concat(frames, how="diagonal_relaxed").to_arrow())

    def _ensure_schema(self, schema: str) -> None:
        """`create schema if not exists` races with itself across sessions: serialize it."""
        with self.connect() as con, con.cursor() as cur:
            cur.execute("select pg_advisory_xact_lock(hashtext($1))", [f"schema {schema}"])
            cur.fetchall()
            cur.execute(f"create schema if not exists {quote(schema)}")
            con.commit()

    @contextmanager
    def _writing(self, schema: str, table: str, data: pa.Table) -> Iterator[tuple[Any, str]]:
        """A transaction holding the table's write lock, `data` bulk-loaded into a staging table;
        committed when the block ends, rolled back on any error (the staging table goes with it)."""
        self._ensure_schema(schema)
        stage = f"factory_stage_{uuid.uuid4().hex[:12]}"
        with self.connect() as con, con.cursor() as cur:
            try:
                cur.execute("select pg_advisory_xact_lock(hashtext($1))", [f"table {schema}.{table}"])
                cur.fetchall()
                cur.adbc_ingest(stage, data, mode="create", temporary=True)
                yield cur, quote(stage)
                cur.execute(f"drop table {quote(stage)}")
                con.commit()
            except BaseException:
                con.rollback()
                raise


def _columns(cur: Any, relation: str) -> list[tuple[str, str]]:
    """(name, type) of a relation's columns, in order; empty when there is no such relation."""
    cur.execute(
        "select attname::text as name, format_type(atttypid, atttypmod) as type from pg_attribute "
        "where attrelid = to_regclass($1) and attnum > 0 and not attisdropped order by attnum",
        [relation],
    )
    return [tuple(row) for row in cur.fetchall()]


def _insert(cur: Any, target: str, stage: str, data: pa.Table) -> None:
    """Insert the staged rows by column name, as DuckDB's `insert ... by name` does."""
    columns = ", ".join(quote(c) for c in data.column_names)
    cur.execute(f"insert into {target} ({columns}) select {columns} from {stage}")
