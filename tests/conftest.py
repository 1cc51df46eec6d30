"""Shared fixtures: environment isolation, factory-root copies of the flights line, one full build."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from factory_dagster.storage.home import FactoryHome

REPO = Path(__file__).resolve().parent.parent
FLIGHTS = REPO / "lines" / "flights"  # the shipped flights line, in the repository's factory root
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")

# Fixtures that build the flights line end to end: a test using one is end to end (slow).
E2E_FIXTURES = ("flights_build",)


# Modules whose tests start Celery workers on the machine's Redis and PostgreSQL: under pytest-xdist
# they run on one worker, one at a time (two at once would starve each other's workers).
BROKER_MODULES = ("test_production", "test_postgres_line")


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that uses the built flights line is e2e even if its module forgot the mark.

    `make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`): each test joins a
    group that one worker runs, its module's (a module-scoped fixture is built once; the session's
    flights build once per worker), the broker tests' together. Marked as each test is collected:
    pytest-xdist reads the groups when collection ends.
    """
    if any(name in getattr(item, "fixturenames", ()) for name in E2E_FIXTURES):
        item.add_marker(pytest.mark.e2e)
    module = item.path.stem
    item.add_marker(pytest.mark.xdist_group("brokers" if module in BROKER_MODULES else module))


# What the factory exports for its process (FactoryHome.export, ensure_dagster_home, the CLI's
# --root/--line), as the session found them.
EXPORTED = ("DAGSTER_HOME", "FACTORY_HOME", "FACTORY_ROOT", "FACTORY_LINES")
SESSION_ENVIRONMENT = {name: os.environ.get(name) for name in EXPORTED}


@pytest.fixture(autouse=True)
def _isolated_environment() -> Iterator[None]:
    """Builders export FACTORY_HOME/DAGSTER_HOME (and the CLI FACTORY_ROOT/FACTORY_LINES); undo that
    after every test. Each test starts with the session's values of those: a module- or
    session-scoped fixture that built something (before this fixture ran) leaves its DAGSTER_HOME
    behind, and a later test's `factory` command would otherwise use that instance."""
    for name, value in SESSION_ENVIRONMENT.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def copy_line(destination: Path, line: str = "flights") -> Path:
    """A factory root at `destination` serving a copy of the repository's line: factory.yaml, the
    line's specs (lines/<line>/) and suites (expectations/<line>/), and `dbt_project` linked to the
    repository's (its manifest is shared). Returns the line folder, `destination/lines/<line>`."""
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "factory.yaml").write_text(f"lines: [{line}]\n")
    shutil.copytree(REPO / "lines" / line, destination / "lines" / line)
    shutil.copytree(REPO / "expectations" / line, destination / "expectations" / line)
    (destination / "dbt_project").symlink_to(REPO / "dbt_project", target_is_directory=True)
    return destination / "lines" / line


def suites_of(spec_dir: Path) -> Path:
    """The GX suites of a line folder `<root>/lines/<line>`: `<root>/expectations/<line>`."""
    return spec_dir.parent.parent / "expectations" / spec_dir.name


def line_args(spec_dir: Path = FLIGHTS) -> list[str]:
    """CLI options selecting one line folder `<root>/lines/<line>`: its root and its name."""
    return ["--root", str(spec_dir.parent.parent), "--line", spec_dir.name]


@pytest.fixture
def line_dir(tmp_path: Path) -> Path:
    return copy_line(tmp_path / "factory")


@dataclass
class Build:
    home: Path
    instance: dg.DagsterInstance
    defs: dg.Definitions
    reports: list


def build_all(
    home: Path, spec_dir: Path | None = None, instance: dg.DagsterInstance | None = None, line: str | None = None
):
    """Build every asset of one line into `home` with the CLI's runner; returns (defs, instance, report).

    The line is the folder `spec_dir` (`<root>/lines/<line>`), else the repository's line named
    `line`, else the repository's flights line (never every line of the factory).
    """
    from factory_dagster.execution.instance import factory_instance
    from factory_dagster.execution.runner import (
        execute,
        partition_tags,
        resolve_selection,
    )
    from factory_dagster.factory import build_definitions
    from factory_dagster.lineage.openlineage import emit_run
    from factory_dagster.products import load_line
    from factory_dagster.storage.home import FactoryHome

    assert spec_dir is None or line is None, "give a line folder or a line name, not both"
    specs = [load_line(spec_dir if spec_dir is not None else REPO / "lines" / (line or "flights"))]
    defs = build_definitions(specs=specs, home=home)
    instance = instance or factory_instance(FactoryHome(home))
    keys = resolve_selection(defs, None)
    report = execute(defs, instance, keys, tags=partition_tags(defs, keys), log_dir=home / "logs")
    for spec in specs:
        emit_run(spec, defs, FactoryHome(home), instance, report.run_id)
    return defs, instance, report


def build_shipped_line(home: Path, line: str) -> Build:
    """A shipped line built into `home` with nothing of the caller's environment; the variables
    the build exported (FACTORY_HOME, DAGSTER_HOME) are undone, so later tests choose their own."""
    saved = dict(os.environ)
    for name in ("DAGSTER_HOME", "FACTORY_ROOT", "FACTORY_LINES", "FACTORY_HOME"):
        os.environ.pop(name, None)
    try:
        defs, instance, report = build_all(home, line=line)
        assert report.success, f"the {line} line did not build: {report.failures}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Build(home=home, instance=instance, defs=defs, reports=[report])


@pytest.fixture(scope="session")
def flights_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The shipped flights line (only that line) built into one temporary factory home."""
    return build_shipped_line(tmp_path_factory.mktemp("factory_home"), "flights")


def query(build: Build, sql: str) -> list[tuple]:
    """Rows of a query on a build's warehouse."""
    con = duckdb.connect(str(FactoryHome(build.home).warehouse))
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def latest_metadata(build: Build, key: str) -> dict:
    """The plain metadata values of an asset's latest materialization in a build."""
    event = build.instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    assert event is not None and event.asset_materialization is not None, f"{key} was never materialized"
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}
