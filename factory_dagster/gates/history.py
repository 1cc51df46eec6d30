"""Gate results kept under the factory home: `gates/<asset>/latest.json` and one file per run.

`factory gates` reads the latest verdicts from the Dagster instance; Data Docs render these files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from factory_dagster.gates.outcome import GateResult
from factory_dagster.storage.atomic import atomic_write_json
from factory_dagster.storage.home import FactoryHome, asset_slug


def gate_dir(home: FactoryHome, asset: str) -> Path:
    return home.root / "gates" / asset_slug(asset)


def record(home: FactoryHome, asset: str, run_id: str, result: GateResult, partition: str | None = None) -> Path:
    payload = {**result.to_json(), "asset": asset, "run_id": run_id, "partition": partition}
    folder = gate_dir(home, asset)
    atomic_write_json(folder / f"{run_id}.json", payload)
    return atomic_write_json(folder / "latest.json", payload)


def latest(home: FactoryHome, asset: str) -> dict[str, Any] | None:
    path = gate_dir(home, asset) / "latest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
