"""dbt models as Dagster assets (dagster-dbt): each model an asset, each dbt test an asset check."""

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.dbt_project import using_dagster_dev

from factory_dagster.spec import FactorySpec


def dbt_project(project_dir: Path) -> DbtProject:
    return DbtProject(project_dir=project_dir, profiles_dir=project_dir)


def dbt_executable() -> str:
    """dbt from PATH, else the one installed beside this interpreter (a venv used unactivated)."""
    return shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))


def dbt_cli(project_dir: Path) -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project(project_dir), profiles_dir=str(project_dir),
                          dbt_executable=dbt_executable())


def prepare_dbt_project(project_dir: Path, force: bool = False) -> None:
    """Write the manifest (`dbt parse`): always when forced, else only under `dagster dev`."""
    if force or using_dagster_dev():
        dbt_cli(project_dir).cli(["--quiet", "parse"], target_path=Path("target")).wait()


def dbt_resource(spec: FactorySpec) -> DbtCliResource:
    return dbt_cli(spec.dbt_project_dir)


def build_dbt_assets(spec: FactorySpec) -> list[dg.AssetsDefinition]:
    if spec.dbt_project_dir is None:
        return []
    project = dbt_project(spec.dbt_project_dir)
    translator = DagsterDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_code_references=True))

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        dagster_dbt_translator=translator,
        name=f"{spec.line.name}_dbt_models",
    )
    def _dbt_models(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
        try:
            yield from dbt.cli(["build"], context=context).stream().fetch_row_counts().fetch_column_metadata()
        finally:
            release_adapter_connection()

    return [_dbt_models]


def release_adapter_connection() -> None:
    """Close the DuckDB handle dagster-dbt's in-process adapter keeps after fetching metadata.

    DuckDB refuses a second in-process connection to the same file with another configuration,
    so the factory's own reads after a dbt step would fail while that handle lives.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter: nothing shared with the factory's DuckDB connections
        return
    with DuckDBConnectionManager._LOCK:
        environment = DuckDBConnectionManager._ENV
        DuckDBConnectionManager._ENV = None
    if environment is not None:
        environment.close()
