"""Read what a dbt project declares (models and their documented columns) from its manifest.

Plain JSON reading: no dbt import at definitions load. The manifest is produced by `dbt parse`
(`factory prepare`), never committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

MANIFEST_RELATIVE_PATH = Path("target") / "manifest.json"


@dataclass(frozen=True)
class DbtModelInfo:
    name: str
    columns: tuple[str, ...]  # documented columns; empty when the model documents none
    tags: tuple[str, ...]
    relation: str  # as dbt names it in SQL, e.g. "warehouse"."main"."fct_flights"
    column_types: tuple[tuple[str, str], ...] = ()  # documented data_type per column ("" if none)
    raw_code: str = ""


def manifest_path(project_dir: Path) -> Path:
    return project_dir / MANIFEST_RELATIVE_PATH


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_manifest(project_dir: Path) -> dict[str, Any]:
    """The parsed manifest (cached until the file changes). Raises FileNotFoundError if absent."""
    path = manifest_path(project_dir)
    return _load(path, path.stat().st_mtime_ns)


def dbt_models(manifest: dict[str, Any]) -> dict[str, DbtModelInfo]:
    """The project's own models by name (not those of installed packages)."""
    project = manifest.get("metadata", {}).get("project_name")
    models: dict[str, DbtModelInfo] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("package_name") != project:
            continue
        models[node["name"]] = DbtModelInfo(
            name=node["name"],
            columns=tuple(node.get("columns", {})),
            tags=tuple(node.get("tags", [])),
            relation=node.get("relation_name") or f'"{node["schema"]}"."{node["alias"]}"',
            column_types=tuple((c, (info.get("data_type") or "")) for c, info in node.get("columns", {}).items()),
            raw_code=node.get("raw_code") or "",
        )
    return models
