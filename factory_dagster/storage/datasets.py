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

    def keys(self, partitioned: bool | None = None) -> list[str]:
        """The stored keys; with `partitioned`, only those of that layout (a spec that switched layout
        leaves files of the other one behind, and they must not be read as current data)."""
        if not self.directory.is_dir():
            return []
        keys = sorted(p.stem for p in self.directory.glob("*.parquet") if not p.name.startswith("."))
        if partitioned is None:
            return keys
        return [k for k in keys if (k != UNPARTITIONED) == partitioned]

    def exists(self) -> bool:
        return bool(self.keys())

    def scan(self, keys: Iterable[str]) -> pl.LazyFrame:
        """A lazy frame over the given partitions that are present."""
        wanted = [k for k in keys if self.path_for(k).exists()]
        if not wanted:
            raise FileNotFoundError(f"no data in {self.directory}")
        return pl.scan_parquet([self.path_for(k) for k in wanted])

    def missing_columns(self, keys: Iterable[str], columns: Iterable[str]) -> dict[str, list[str]]:
        """Per present key, the wanted columns its file lacks (read from parquet footers only)."""
        wanted = list(columns)
        missing = {}
        for key in keys:
            path = self.path_for(key)
            if path.exists():
                schema = pl.read_parquet_schema(path)
                if lacking := [c for c in wanted if c not in schema]:
                    missing[key] = lacking
        return missing
