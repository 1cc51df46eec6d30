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


class ManifestError(Exception):
    """The manifest is missing or older than the project: `factory prepare` writes it."""

    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class DbtModelInfo:
    name: str
    columns: tuple[str, ...]  # documented columns; empty when the model documents none
    tags: tuple[str, ...]
    relation: str  # as dbt names it in SQL, e.g. "warehouse"."main"."fct_flights"
    column_types: tuple[tuple[str, str], ...] = ()  # documented data_type per column ("" if none)
    raw_code: str = ""
    layer: str | None = None  # the folder under the line's folder: staging, intermediate, marts


def manifest_path(project_dir: Path) -> Path:
    return project_dir / MANIFEST_RELATIVE_PATH


PROJECT_FILES = ("models", "macros", "seeds", "snapshots", "tests")


def stale_by(project_dir: Path) -> Path | None:
    """A project file changed after the manifest was written (None when the manifest is current)."""
    written = manifest_path(project_dir).stat().st_mtime
    files = [
        project_dir / "dbt_project.yml",
        *(p for folder in PROJECT_FILES for p in (project_dir / folder).rglob("*") if p.is_file()),
    ]
    return next((p for p in files if p.exists() and p.stat().st_mtime > written), None)


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def load_manifest(project_dir: Path, check_current: bool = True) -> dict[str, Any]:
    """The parsed manifest (cached until the file changes).

    Raises ManifestError when it is absent or, with `check_current`, older than a project file:
    definitions never parse the project themselves (`factory prepare` does, or `dagster dev`).
    """
    path = manifest_path(project_dir)
    if not (project_dir / "dbt_project.yml").is_file():
        raise ManifestError(project_dir, "dbt project not found (no dbt_project.yml)")
    if not path.is_file():
        raise ManifestError(path, "dbt manifest missing: run 'factory prepare' (dbt parse)")
    if check_current and (changed := stale_by(project_dir)) is not None:
        raise ManifestError(
            path, f"dbt manifest is older than {changed.relative_to(project_dir)}: run 'factory prepare' (dbt parse)"
        )
    return _load(path, path.stat().st_mtime_ns)


def models_path(line: str) -> str:
    """Where a line's models are in the project, as dbt's `original_file_path` starts."""
    return f"models/{line}/"


def dbt_models(manifest: dict[str, Any], under: str | None = None) -> dict[str, DbtModelInfo]:
    """The project's own models by name (not those of installed packages); `under`: only those
    whose file is under this project path (a line's folder, see `models_path`)."""
    project = manifest.get("metadata", {}).get("project_name")
    models: dict[str, DbtModelInfo] = {}
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "model" or node.get("package_name") != project:
            continue
        if under is not None and not node.get("original_file_path", "").startswith(under):
            continue
        folders = node.get("original_file_path", "").split("/")[:-1]  # models/<line>/<layer>/...
        models[node["name"]] = DbtModelInfo(
            name=node["name"],
            columns=tuple(node.get("columns", {})),
            tags=tuple(node.get("tags", [])),
            relation=node.get("relation_name") or f'"{node["schema"]}"."{node["alias"]}"',
            column_types=tuple((c, (info.get("data_type") or "")) for c, info in node.get("columns", {}).items()),
            raw_code=node.get("raw_code") or "",
            layer=folders[2] if len(folders) > 2 and under is not None else (folders[1] if len(folders) > 1 else None),
        )
    return models
