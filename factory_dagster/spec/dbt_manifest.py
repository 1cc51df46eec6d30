"""Read what a dbt project declares (models, their documented columns) and what its models
produce (the output columns of their compiled SQL) from its manifest.

Plain JSON reading and sqlglot: no dbt import at definitions load. The manifest is produced by
`dbt compile` (`factory prepare`), never committed; a manifest from `dbt parse` alone has no
compiled SQL, and then a model's columns are its documented ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from factory_dagster.spec.errors import display_path

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
    produced: tuple[str, ...] | None = None  # output columns of its compiled SQL; None: not resolved
    sql_file: str = ""  # its SQL, relative to the project: models/<line>/marts/fct_flights.sql
    docs_file: str | None = None  # the YAML documenting it, relative to the project (None: none)

    @property
    def undocumented(self) -> tuple[str, ...]:
        """Columns the SQL produces that the documentation does not name (none when not resolved)."""
        documented = {c.lower() for c in self.columns}
        return tuple(c for c in self.produced or () if c.lower() not in documented)

    @property
    def not_produced(self) -> tuple[str, ...]:
        """Documented columns the SQL does not produce (none when not resolved)."""
        if self.produced is None:
            return ()
        produced = {c.lower() for c in self.produced}
        return tuple(c for c in self.columns if c.lower() not in produced)

    def comparison(self, project_dir: Path) -> str:
        """Both column lists and the files to fix, for a message about their disagreement."""
        files = [display_path(project_dir / f) for f in (self.docs_file, self.sql_file) if f]
        return (
            f"documented [{', '.join(self.columns)}], its SQL produces [{', '.join(self.produced or ())}]: "
            f"fix {' or '.join(files)}"
        )

    def drift(self, project_dir: Path) -> str | None:
        """One line saying how the documented columns and the SQL's disagree (None if they agree).

        A model documenting no column has nothing to drift from (TD21 and dbt's own checks judge
        missing documentation)."""
        if not self.columns or not (self.undocumented or self.not_produced):
            return None
        parts = [f"documents {c}, which its SQL does not produce" for c in self.not_produced]
        parts += [f"produces {c}, which is not documented" for c in self.undocumented]
        return f"dbt model {self.name}: {'; '.join(parts)}: {self.comparison(project_dir)}"


def manifest_path(project_dir: Path) -> Path:
    return project_dir / MANIFEST_RELATIVE_PATH


PROJECT_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests")
PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml", "selectors.yml")


def stale_by(project_dir: Path) -> Path | None:
    """A project file or folder changed after the manifest was written (None when it is current).

    Folders count: creating, deleting or renaming a file changes its folder's time, so a model
    deleted since the manifest makes it stale too.
    """
    written = manifest_path(project_dir).stat().st_mtime
    paths = [
        *(project_dir / name for name in PROJECT_FILES),
        *(project_dir / folder for folder in PROJECT_FOLDERS),
        *(p for folder in PROJECT_FOLDERS for p in (project_dir / folder).rglob("*")),
    ]
    return next((p for p in paths if p.exists() and p.stat().st_mtime > written), None)


@lru_cache(maxsize=8)
def _load(path: Path, mtime_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def is_current(project_dir: Path) -> bool:
    """A manifest exists and no project file changed after it was written."""
    return manifest_path(project_dir).is_file() and stale_by(project_dir) is None


def load_manifest(project_dir: Path, check_current: bool = True) -> dict[str, Any]:
    """The parsed manifest (cached until the file changes).

    Raises ManifestError when it is absent or, with `check_current`, older than a project file:
    definitions never parse the project themselves (`factory prepare` does, or `dagster dev`).
    """
    path = manifest_path(project_dir)
    if not (project_dir / "dbt_project.yml").is_file():
        raise ManifestError(project_dir, "dbt project not found (no dbt_project.yml)")
    if not path.is_file():
        raise ManifestError(path, "dbt manifest missing: run 'factory prepare' (dbt compile)")
    if check_current and (changed := stale_by(project_dir)) is not None:
        raise ManifestError(
            path, f"dbt manifest is older than {changed.relative_to(project_dir)}: run 'factory prepare' (dbt compile)"
        )
    return _load(path, path.stat().st_mtime_ns)


def models_path(line: str) -> str:
    """Where a line's models are in the project, as dbt's `original_file_path` starts."""
    return f"models/{line}/"


def dbt_models(
    manifest: dict[str, Any], under: str | None = None, tables: Mapping[str, Sequence[str]] | None = None
) -> dict[str, DbtModelInfo]:
    """The project's own models by name (not those of installed packages); `under`: only those
    whose file is under this project path (a line's folder, see `models_path`). `tables`: columns
    of tables dbt reads as sources but does not declare, by the asset key dagster-dbt gives a
    source (`raw/flights`): the factory's landed sources."""
    project = manifest.get("metadata", {}).get("project_name")
    produced = produced_columns(manifest, tables or {})
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
            produced=produced.get(node["unique_id"]),
            sql_file=node.get("original_file_path", ""),
            docs_file=(node.get("patch_path") or "").split("://", 1)[-1] or None,
        )
    return models


def source_key(source: Mapping[str, Any]) -> str:
    """The asset key dagster-dbt gives a dbt source by default: `<source name>/<table name>`."""
    return f"{source['source_name']}/{source['name']}"


def produced_columns(
    manifest: dict[str, Any], tables: Mapping[str, Sequence[str]]
) -> dict[str, tuple[str, ...] | None]:
    """The output columns of every model's compiled SQL, by unique id, without running it.

    sqlglot qualifies each model's SQL against the columns of what it reads: upstream models'
    produced columns (resolved first), a dbt source's declared columns, else `tables`' columns of
    that source. A model whose SQL is not compiled, does not parse, or selects `*` from something
    whose columns are unknown is None (its documented columns stand in for it).
    """
    nodes = manifest.get("nodes", {})
    sources = manifest.get("sources", {})
    resolved: dict[str, tuple[str, ...] | None] = {}

    def read(unique_id: str) -> tuple[tuple[str, str, str], Sequence[str] | None] | None:
        """(database, schema, table) and columns of something a model depends on (None: not a table)."""
        if unique_id in sources:
            source = sources[unique_id]
            columns = list(source.get("columns") or {}) or tables.get(source_key(source))
            return (source.get("database") or "", source["schema"], source.get("identifier") or source["name"]), columns
        node = nodes.get(unique_id)
        if node is None or node.get("resource_type") not in ("model", "seed", "snapshot"):
            return None
        if unique_id not in resolved:
            resolved[unique_id] = None  # a cycle (dbt refuses them) resolves to unknown
            resolved[unique_id] = _output_columns(node, read) if node["resource_type"] == "model" else None
        columns = resolved[unique_id] or (list(node.get("columns") or {}) or None)
        return (node.get("database") or "", node["schema"], node.get("alias") or node["name"]), columns

    for unique_id, node in nodes.items():
        if node.get("resource_type") == "model":
            read(unique_id)
    return resolved


def _output_columns(node: Mapping[str, Any], read: Any) -> tuple[str, ...] | None:
    """One model's output columns; `read` gives the relation and columns of what it depends on."""
    sql = node.get("compiled_code")
    if not sql:
        return None
    import sqlglot  # lazy: only when a compiled manifest is read
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.qualify import qualify

    schema: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    spelled: dict[str, str] = {}  # sqlglot lowercases DuckDB's case-insensitive names: keep the writer's
    for upstream in node.get("depends_on", {}).get("nodes", []):
        found = read(upstream)
        if found is None or found[1] is None:
            continue
        (database, schema_name, table), columns = found
        spelled.update({c.lower(): c for c in columns})
        schema.setdefault(database, {}).setdefault(schema_name, {})[table] = dict.fromkeys(columns, "unknown")
    try:
        parsed = sqlglot.parse_one(sql, dialect="duckdb")
        if not isinstance(parsed, exp.Query):  # not a select: nothing to read columns from
            return None
        spelled.update({c.lower(): c for c in parsed.named_selects if c and c != "*"})
        qualified = qualify(parsed, schema=dict(schema), dialect="duckdb", validate_qualify_columns=False)
    except (SqlglotError, ValueError, KeyError):
        return None
    names = qualified.named_selects if isinstance(qualified, exp.Query) else []
    if not names or any(not name or name == "*" for name in names):
        return None
    return tuple(spelled.get(name, name) for name in names)
