"""The Dagster resource every factory asset uses to find the factory home."""

from __future__ import annotations

import dagster as dg

from factory_dagster.storage.home import FactoryHome


class FactoryResource(dg.ConfigurableResource):
    """The factory home: the DuckDB warehouse, parquet datasets, model registry, quarantine."""

    home: str

    @property
    def paths(self) -> FactoryHome:
        return FactoryHome.resolve(self.home)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # dbt runs as a child process and reads FACTORY_HOME in profiles.yml.
        self.paths.export()
