"""Parquet datasets: one file per partition key, each replaced atomically."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from factory_dagster.storage.atomic import atomic_write

UNPARTITIONED = "all"


class Dataset:
    """A folder of `<partition key>.parquet` files; unpartitioned datasets use the key `all`."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path_for(self, key: str = UNPARTITIONED) -> Path:
        return self.directory / f"{key}.parquet"

    def write(self, frame: pl.DataFrame, key: str = UNPARTITIONED) -> Path:
        return atomic_write(self.path_for(key), lambda tmp: frame.write_parquet(tmp, statistics=True))

    def keys(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.parquet") if not p.name.startswith("."))

    def exists(self) -> bool:
        return bool(self.keys())

    def scan(self, keys: Iterable[str] | None = None) -> pl.LazyFrame:
        """A lazy frame over the given partitions (all present ones by default)."""
        wanted = self.keys() if keys is None else [k for k in keys if self.path_for(k).exists()]
        if not wanted:
            raise FileNotFoundError(f"no data in {self.directory}")
        return pl.scan_parquet([self.path_for(k) for k in wanted])
