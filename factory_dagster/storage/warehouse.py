"""The warehouse backend: what every product reads and writes through, on the warehouse the active
deployment profile names (the embedded DuckDB file, or PostgreSQL in production).

One interface, two backends (storage/duckdb_warehouse.py, storage/postgres_warehouse.py): reads
come back as Arrow (never row by row), writes replace a table or a window of its rows in one
transaction (readers see the old or the new rows), and SQL parameters are written with `param(n)`,
which each backend renders in its own dialect (`?` for DuckDB, `$n` for PostgreSQL).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa

from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import DeploymentProfile, active_profile

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The dbt profile the factory runs every dbt project with (`--profile`), whatever the project's own
# profiles.yml says: its targets are the warehouses below, so dbt and the factory's steps always
# share one warehouse. The file holds no secret: every connection value is an `env_var`.
DBT_PROFILES_DIR = Path(__file__).resolve().parent / "dbt_profile"
DBT_PROFILE = "factory_warehouse"
# The schema dbt's `local` target builds models in: dbt names a model's schema after it (`main`,
# or `main_<custom>` for a model with a custom schema), which another warehouse's target replaces.
LOCAL_SCHEMA = "main"


def quote(identifier: str) -> str:
    """A plain identifier, double-quoted (both dialects); anything else is refused."""
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"not a plain SQL identifier: {identifier!r}")
    return f'"{identifier}"'


def relation_parts(relation: str) -> tuple[str, str]:
    """(schema, table) of a dbt relation name such as `"warehouse"."main"."fct_flights"`."""
    parts = [part.strip('"') for part in relation.split(".")]
    return (parts[-2] if len(parts) > 1 else LOCAL_SCHEMA), parts[-1]


class Warehouse(ABC):
    """A warehouse the factory's steps read and write; `dbt_target` is the target of the factory's
    dbt profile that builds the dbt models in the same warehouse."""

    dbt_target: str

    @property
    @abstractmethod
    def namespace(self) -> str:
        """The OpenLineage namespace of its tables (`duckdb://<file>`, `postgres://host:port`)."""

    @abstractmethod
    def param(self, position: int) -> str:
        """The placeholder of the `position`-th (from 1) query parameter."""

    def between(self, expression: str) -> str:
        """`expression between <first parameter> and <second parameter>`."""
        return f"{expression} between {self.param(1)} and {self.param(2)}"

    @abstractmethod
    def read_arrow(self, sql: str, params: Sequence[object] | None = None) -> pa.Table:
        """Run a query and return its rows as Arrow."""

    def read_frame(self, sql: str, params: Sequence[object] | None = None) -> pl.DataFrame:
        """Run a query into a polars frame, through Arrow."""
        frame = pl.from_arrow(self.read_arrow(sql, params))
        assert isinstance(frame, pl.DataFrame)
        return frame

    @abstractmethod
    def table_exists(self, schema: str, table: str) -> bool: ...

    def relation_exists(self, relation: str) -> bool:
        """Whether a relation (a table or view; a dbt model's compiled name) is in this warehouse."""
        return self.table_exists(*relation_parts(self.model_relation(relation)))

    @abstractmethod
    def replace_table(self, schema: str, table: str, data: pa.Table) -> int:
        """Replace `schema.table` with `data` in one transaction; returns the rows written."""

    @abstractmethod
    def replace_rows(self, schema: str, table: str, data: pa.Table, where: str, params: Sequence[object]) -> int:
        """Delete the rows matching `where` (its parameters written with `param`), insert `data`, in
        one transaction (a partition swap); creates the table when there is none."""

    @abstractmethod
    def publish_parquet(self, schema: str, name: str, files: Sequence[Path]) -> None:
        """`schema.name` shows the rows of these parquet files (columns united by name)."""

    def model_relation(self, relation: str) -> str:
        """Where a dbt model compiled for the `local` target (`factory prepare`) is in this warehouse."""
        return relation

    def dbt_relation(self, relation: str) -> tuple[str, str, str] | None:
        """(database, schema, table) where this warehouse's dbt target builds a relation compiled
        for the `local` target (`factory prepare`); None when that is where it already is."""
        return None

    def lineage_name(self, relation: str) -> str:
        """The OpenLineage dataset name of a relation in this warehouse (`schema.table`)."""
        return ".".join(part.strip('"') for part in self.model_relation(relation).split(".")[-2:])


def warehouse_for(profile: DeploymentProfile, home: FactoryHome) -> Warehouse:
    """The embedded DuckDB file under the factory home, or the profile's PostgreSQL warehouse."""
    # Each backend imported only when chosen: the PostgreSQL one needs the `production` extra.
    if profile.warehouse is None:
        from factory_dagster.storage.duckdb_warehouse import DuckDBWarehouse

        return DuckDBWarehouse(home.warehouse)
    from factory_dagster.storage.postgres_warehouse import PostgresWarehouse

    return PostgresWarehouse(profile.warehouse)


def active_warehouse(home: FactoryHome) -> Warehouse:
    """The warehouse of the profile `FACTORY_PROFILE` names."""
    return warehouse_for(active_profile(), home)
