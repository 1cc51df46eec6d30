"""The factory root: the folder that holds the product lines, the dbt project and the GX suites.

A line is found by its name, never by a path written in a spec:

    <root>/factory.yaml                      which lines this factory serves
    <root>/lines/<line>/*.yaml               the line's specs (and requirements.txt, its data packages)
    <root>/dbt_project/models/<line>/        the line's dbt models (one dbt project for every line)
    <root>/expectations/<line>/*.json        the line's GX suites, one per gated asset

The root is `--root`, else `$FACTORY_ROOT`, else the nearest folder holding `factory.yaml` from
the working directory up. The lines served are `--line`, else `$FACTORY_LINES` (comma-separated),
else `factory.yaml`'s `lines`, else every folder under `lines/`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.pydantic_errors import explain
from factory_dagster.spec.types import Name, Strict
from factory_dagster.spec.yaml_source import format_key_path, load_yaml

CONFIG_FILE = "factory.yaml"
LINES_DIR = "lines"
DBT_PROJECT_DIR = "dbt_project"
SUITES_DIR = "expectations"


class FactoryConfig(Strict):
    """`factory.yaml`: the lines this factory serves (empty: every folder under lines/)."""

    lines: list[Name] = []


@dataclass(frozen=True)
class FactoryRoot:
    """Where each line's parts live, by the line's name. Nothing here touches the disk until asked."""

    path: Path
    config: FactoryConfig

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def dbt_project_dir(self) -> Path:
        return self.path / DBT_PROJECT_DIR

    def line_dir(self, line: str) -> Path:
        return self.path / LINES_DIR / line

    def dbt_models_dir(self, line: str) -> Path:
        return self.dbt_project_dir / "models" / line

    def suites_dir(self, line: str) -> Path:
        return self.path / SUITES_DIR / line

    def available_lines(self) -> list[str]:
        """Every folder under lines/ that holds a spec file."""
        folder = self.path / LINES_DIR
        if not folder.is_dir():
            return []
        return sorted(
            p.name for p in folder.iterdir() if p.is_dir() and any(f.suffix in (".yaml", ".yml") for f in p.iterdir())
        )

    def served_lines(self, requested: Sequence[str] | None = None) -> list[str]:
        """The lines to load: `requested`, else $FACTORY_LINES, else factory.yaml, else all."""
        from_env = [n.strip() for n in os.environ.get("FACTORY_LINES", "").split(",") if n.strip()]
        names = list(requested or from_env or self.config.lines or self.available_lines())
        available = self.available_lines()
        for index, name in enumerate(names):
            if name not in available:
                where = "--line" if requested else "FACTORY_LINES" if from_env else None
                if where is None:
                    doc = load_yaml(self.config_file)
                    raise SpecError(
                        self.config_file,
                        format_key_path(("lines", index)),
                        f"unknown line '{name}' (lines under {self.path / LINES_DIR}: {known(available)})",
                        doc.line_of(("lines", index)),
                    )
                raise SpecError(
                    None, where, f"unknown line '{name}' (lines under {self.path / LINES_DIR}: {known(available)})"
                )
        if not names:
            raise SpecError(self.path / LINES_DIR, "", "no product line here: add lines/<name>/line.yaml")
        return list(dict.fromkeys(names))


def _read_config(path: Path) -> FactoryConfig:
    doc = load_yaml(path)
    data = doc.data.get("factory", doc.data) if doc.data else {}
    prefix = ("factory",) if "factory" in doc.data else ()
    try:
        return FactoryConfig.model_validate(data or {})
    except ValidationError as exc:
        rel_path, reason = next(iter(explain(exc, FactoryConfig, data)))
        raise SpecError(
            path, format_key_path((*prefix, *rel_path)), reason, doc.line_of((*prefix, *rel_path))
        ) from None


def find_root(value: Path | str | None = None) -> FactoryRoot:
    """The factory root: `value`, else $FACTORY_ROOT, else the nearest folder with factory.yaml."""
    configured = value if value is not None else os.environ.get("FACTORY_ROOT")
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_dir():
            raise SpecError(path, "", "factory root not found (a folder holding factory.yaml and lines/)")
    else:
        start = Path.cwd().resolve()
        path = next((p for p in (start, *start.parents) if (p / CONFIG_FILE).is_file()), None)
        if path is None:
            raise SpecError(
                start, "", f"no {CONFIG_FILE} here or above: run from a factory root or set FACTORY_ROOT (or --root)"
            )
    config_file = path / CONFIG_FILE
    config = _read_config(config_file) if config_file.is_file() else FactoryConfig()
    return FactoryRoot(path, config)
