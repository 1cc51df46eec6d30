"""The Dagster resource every factory asset uses to find the factory home and the warehouse."""

from __future__ import annotations

import dagster as dg

from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import Warehouse, active_warehouse


class FactoryResource(dg.ConfigurableResource):
    """The factory home (parquet datasets, model registry, quarantine, reports: every file output
    lives under it) and the warehouse of the active deployment profile."""

    home: str

    @property
    def paths(self) -> FactoryHome:
        return FactoryHome.resolve(self.home)

    @property
    def warehouse(self) -> Warehouse:
        """The embedded DuckDB file under the home, or the production PostgreSQL warehouse."""
        return active_warehouse(self.paths)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # dbt runs as a child process and reads FACTORY_HOME in the factory's dbt profile.
        self.paths.export()
