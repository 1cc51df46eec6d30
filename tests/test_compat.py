"""The private APIs the factory still needs, named: an upgrade that removes one fails here first."""

from __future__ import annotations

import importlib
import pathlib

import pytest

from factory_dagster.compat import PRIVATE_APIS

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "factory_dagster"


@pytest.mark.parametrize("api", sorted(PRIVATE_APIS))
def test_each_private_api_still_exists(api: str) -> None:
    module_name, _, attribute = api.rpartition(".")
    module_name, _, owner = module_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        # The owner may be a submodule nothing imported yet (dagster_celery.make_app).
        owner_object = getattr(module, owner, None) or importlib.import_module(f"{module_name}.{owner}")
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"private API {api} is gone ({exc}): {PRIVATE_APIS[api]}; update factory_dagster/compat.py")
    assert hasattr(owner_object, attribute), (
        f"private API {api} is gone: {PRIVATE_APIS[api]}; update factory_dagster/compat.py"
    )


def test_no_private_import_outside_the_compatibility_module() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")) and (
                "dagster._" in stripped
                or "dagster_dbt._" in stripped
                or stripped.startswith(("from dbt.", "import dbt"))
                or ".dbt_project import" in stripped
            ):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {stripped}")
    assert offenders == []


def test_release_closes_the_adapter_handle_dbt_duckdb_keeps() -> None:
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    from factory_dagster.compat import release_duckdb_adapter_connection

    release_duckdb_adapter_connection()
    assert DuckDBConnectionManager._ENV is None


def test_the_installed_dbt_is_told_its_version_without_asking_it(tmp_path: pathlib.Path) -> None:
    """dagster-dbt learns the dbt version from `dbt --version` (2 s, and a request to PyPI); for
    the dbt-core beside this interpreter the factory tells it, and it is what that command says."""
    import re
    import subprocess
    import sys

    from factory_dagster.compat import dbt_cli_resource

    executable = str(pathlib.Path(sys.executable).with_name("dbt"))
    resource = dbt_cli_resource(str(PACKAGE.parent / "dbt_project"), executable)
    assert type(resource).__name__ == "InstalledDbtCliResource"
    said = subprocess.run([executable, "--version"], capture_output=True, text=True, check=True).stdout
    installed = re.search(r"installed:\s+(\d+\.\d+\.\d+)", said)
    assert installed is not None, said
    assert str(resource._cli_version) == installed.group(1)
    (tmp_path / "dbt").symlink_to(executable)  # a dbt elsewhere: dagster-dbt asks it
    other = dbt_cli_resource(str(PACKAGE.parent / "dbt_project"), str(tmp_path / "dbt"))
    assert type(other).__name__ == "DbtCliResource"
