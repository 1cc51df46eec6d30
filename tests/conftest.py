"""Shared fixtures: environment isolation, spec-folder copies, and one full build of the line."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.spec.loader import DEFAULT_LINE

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Builders export FACTORY_HOME/DAGSTER_HOME; undo that after every test."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def copy_line(destination: Path) -> Path:
    """A copy of the flights spec folder whose dbt project path still points at the repository."""
    shutil.copytree(DEFAULT_LINE, destination)
    line_yaml = destination / "line.yaml"
    text = line_yaml.read_text()
    text = re.sub(r"project_dir: .*", f"project_dir: {REPO / 'dbt_project'}", text)
    text = re.sub(r"suites_dir: .*", f"suites_dir: {REPO / 'expectations'}", text)
    line_yaml.write_text(text)
    return destination


@pytest.fixture
def line_dir(tmp_path: Path) -> Path:
    return copy_line(tmp_path / "specs")


@dataclass
class Build:
    home: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions
    reports: list


def build_all(home: Path, spec_dir: Path | None = None, instance: dg.DagsterInstance | None = None):
    """Build every asset of a line into `home` with the CLI's runner; returns (defs, instance, report)."""
    from factory_dagster.execution.instance import factory_instance
    from factory_dagster.execution.runner import (
        execute,
        partition_tags,
        resolve_selection,
    )
    from factory_dagster.factory import build_definitions
    from factory_dagster.storage.home import FactoryHome

    defs = build_definitions(spec_dir=spec_dir, home=home)
    instance = instance or factory_instance(FactoryHome(home))
    keys = resolve_selection(defs, None)
    report = execute(defs, instance, keys, tags=partition_tags(defs, keys), log_dir=home / "logs")
    from factory_dagster.lineage.openlineage import emit_run
    from factory_dagster.spec import load_line

    emit_run(load_line(spec_dir), defs, FactoryHome(home), instance, report.run_id)
    return defs, instance, report


@pytest.fixture(scope="session")
def flights_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """The shipped flights line built twice into one temporary factory home."""
    home = tmp_path_factory.mktemp("factory_home")
    saved = dict(os.environ)
    for name in ("DAGSTER_HOME", "FACTORY_SPECS", "FACTORY_HOME"):
        os.environ.pop(name, None)
    try:
        defs, instance, first = build_all(home)
        assert first.success, f"the flights line did not build: {first.failures}"
    finally:  # the build exported FACTORY_HOME and DAGSTER_HOME: later tests choose their own
        os.environ.clear()
        os.environ.update(saved)
    yield Build(home=home, instance=instance, defs=defs, reports=[first])
