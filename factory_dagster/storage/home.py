"""The factory home: one folder holding the warehouse, datasets, models and the Dagster instance."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = ".factory"


def asset_slug(key: str) -> str:
    """An asset key as one path segment or file stem: `raw/flights` → `raw.flights`."""
    return key.replace("/", ".")


def resolve_home(value: str | os.PathLike[str] | None = None) -> Path:
    """The factory home as an absolute path: `value`, else `$FACTORY_HOME`, else `./.factory`."""
    raw = value if value is not None else os.environ.get("FACTORY_HOME") or DEFAULT_HOME
    return Path(raw).expanduser().resolve()


@dataclass(frozen=True)
class FactoryHome:
    """Paths under the factory home. Nothing here touches the disk until asked to."""

    root: Path

    @classmethod
    def resolve(cls, value: str | os.PathLike[str] | None = None) -> FactoryHome:
        return cls(resolve_home(value))

    def export(self) -> None:
        """Publish the absolute home to child processes (dbt reads it in profiles.yml)."""
        os.environ["FACTORY_HOME"] = str(self.root)

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    def dataset_dir(self, kind: str, name: str) -> Path:
        """Folder of a parquet dataset (`features`, `predictions`): one file per partition."""
        return self.root / kind / name

    def model_dir(self, name: str) -> Path:
        return self.root / "models" / name

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def gx_parsed(self) -> Path:
        """Markers of the GX suites GX itself has parsed (by content), so it parses each once."""
        return self.root / "gates" / ".parsed"
