"""Quarantine: data a gate or ingestion rejected, kept with the run id and the reason."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import polars as pl

from factory_dagster.storage.atomic import atomic_write, atomic_write_json
from factory_dagster.storage.home import FactoryHome, asset_slug


def quarantine(
    home: FactoryHome,
    asset: str,
    run_id: str,
    reason: str,
    frame: pl.DataFrame | None = None,
    files: list[Path] | None = None,
    details: dict[str, Any] | None = None,
) -> Path:
    """Keep rejected data under `quarantine/<asset>/<time>_<run>/`; returns that folder.

    Holds the rejected rows (`rows.parquet`), copies of the offending files, and `reason.json`
    (written last: a folder with it is complete).
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    folder = home.quarantine / asset_slug(asset) / f"{stamp}_{run_id[:8]}"
    folder.mkdir(parents=True, exist_ok=True)
    if frame is not None:
        atomic_write(folder / "rows.parquet", frame.write_parquet)
    kept = []
    for path in files or []:
        if path.is_file():
            atomic_write(folder / path.name, lambda tmp, source=path: shutil.copy2(source, tmp))
            kept.append(path.name)
    atomic_write_json(
        folder / "reason.json",
        {
            "asset": asset,
            "run_id": run_id,
            "reason": reason,
            "quarantined_at": stamp,
            "rows": frame.height if frame is not None else None,
            "files": kept,
            **(details or {}),
        },
    )
    return folder
