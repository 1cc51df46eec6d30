"""The code location loads fast, validates with Dagster's CLI, and the factory CLI lists it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factory_dagster.cli import main
from tests.conftest import REPO, line_args


def run(args: list[str], env: dict[str, str] | None = None, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )


def test_dagster_definitions_validate(tmp_path: Path) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    result = run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        env={"FACTORY_HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful" in result.stdout + result.stderr


def test_loading_definitions_does_not_import_heavy_libraries(tmp_path: Path) -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "import factory_dagster.definitions as d; d.defs;"
        "heavy = [m for m in ('sklearn', 'great_expectations', 'dbt.cli.main') if m in sys.modules];"
        "print(heavy, round(time.perf_counter() - t, 2))"
    )
    # Even the first load in a new home: GX parses the suites in `factory prepare`, not here.
    result = run([sys.executable, "-c", code], env={"FACTORY_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-2000:]
    heavy, _seconds = result.stdout.strip().rsplit(" ", 1)
    assert heavy == "[]"


def test_factory_list_groups_kinds_and_owners(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["list", "--format", "json", *line_args(), "--home", str(tmp_path)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["lines"] == ["flights"]
    groups = listing["groups"]
    assert set(groups) == {"flights", "governance"}  # one group per line, and the reports
    assert {a["asset"] for a in groups["governance"]} == {"technical_debt_report", "ml_test_score"}
    model = next(a for a in groups["flights"] if a["asset"] == "delay_classifier")
    assert model["kinds"] == ["scikitlearn"] and model["owners"] == ["team:ml-platform"]
    raw = {a["asset"] for a in groups["flights"] if a["asset"].startswith("raw/")}
    assert raw == {f"raw/{t}" for t in ("airlines", "airports", "flights", "planes", "weather")}


def test_factory_build_rejects_an_unknown_selection(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["build", "--no-prepare", "--select", "no_such_asset", *line_args(), "--home", str(tmp_path)])
    assert exited.value.code == 2
    assert "no_such_asset" in capsys.readouterr().err
