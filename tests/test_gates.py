"""Suites as files: load-time errors, severities, `factory gates`, Data Docs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from factory_dagster.cli import main
from factory_dagster.factory import build_definitions, build_gates
from factory_dagster.gates.suites import Expectation, Suite
from factory_dagster.products import load_line
from factory_dagster.spec import SpecError
from factory_dagster.spec.errors import display_path
from tests.conftest import FLIGHTS, REPO, Build, copy_line, line_args, suites_of
from tests.test_bad_inputs import run_backfill

GATED = {
    "raw/flights",
    "raw/weather",
    "raw/planes",
    "raw/airlines",
    "raw/airports",
    "fct_flights",
    "dim_airports",
    "flight_features",
    "delay_predictions",
}


@pytest.fixture
def line_with_suites(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the flights line in its own factory root, and that root's copy of its suites."""
    spec_dir = copy_line(tmp_path / "factory")
    return spec_dir, suites_of(spec_dir)


def edit_suite(suites: Path, name: str, change) -> Path:
    path = suites / f"{name}.json"
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document, indent=2))
    return path


def load_error(spec_dir: Path, tmp_path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        build_definitions(spec_dir, home=tmp_path / "home")
    return str(caught.value)


def test_every_product_the_issue_names_has_a_gate() -> None:
    gates = build_gates(load_line(FLIGHTS))
    assert set(gates) == GATED
    for gate in gates.values():
        assert gate.check_spec().blocking


def validate_error(spec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """What `factory validate` says (one line) of a line whose suites GX parses."""
    with pytest.raises(SystemExit) as exited:
        main(["validate", *line_args(spec_dir), "--home", str(tmp_path / "home")])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    return lines[0].removeprefix("error: ")


def test_a_suite_gx_cannot_parse_fails_validate_not_the_load(line_with_suites, tmp_path: Path, capsys) -> None:
    spec_dir, suites = line_with_suites
    path = edit_suite(
        suites, "raw.airlines", lambda d: d["expectations"][2].update({"type": "expect_column_values_to_be_purple"})
    )
    build_definitions(spec_dir, home=tmp_path / "home")  # definitions load does not import GX
    message = validate_error(spec_dir, tmp_path, capsys)
    assert message.startswith(f"{display_path(path)}: expectations[2]: GX cannot parse it: ")
    assert "expect_column_values_to_be_purple" in message


def test_bad_expectation_arguments_fail_validate(line_with_suites, tmp_path: Path, capsys) -> None:
    spec_dir, suites = line_with_suites
    path = edit_suite(suites, "raw.planes", lambda d: d["expectations"][4]["kwargs"].update({"min_value": "old"}))
    message = validate_error(spec_dir, tmp_path, capsys)
    assert message.startswith(f"{display_path(path)}: expectations[4]: GX cannot parse it: ")


def test_a_suite_gx_cannot_run_fails_its_gate_closed(line_with_suites) -> None:
    spec_dir, suites = line_with_suites
    edit_suite(
        suites, "raw.airlines", lambda d: d["expectations"][2].update({"type": "expect_column_values_to_be_purple"})
    )
    gate = build_gates(load_line(spec_dir))["raw/airlines"]
    frame = pl.DataFrame({"carrier": ["9E", "AA"], "name": ["Endeavor Air Inc.", "American Airlines Inc."]})
    result = gate.evaluate(frame)
    assert result.blocking
    purple = next(o for o in result.outcomes if o.expectation.type == "expect_column_values_to_be_purple")
    assert purple.failed and purple.error


def test_a_suite_naming_a_missing_column_fails_at_load(line_with_suites, tmp_path: Path) -> None:
    spec_dir, suites = line_with_suites
    path = edit_suite(
        suites,
        "flight_features",
        lambda d: d["expectations"].append(
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "wind_gust"}}
        ),
    )
    message = load_error(spec_dir, tmp_path)
    index = len(json.loads(path.read_text())["expectations"]) - 1
    assert message.startswith(
        f"{display_path(path)}: expectations[{index}].kwargs: expect_column_values_to_not_be_null names column "
        f"'wind_gust', which flight_features does not have (columns: "
    )


def test_invalid_json_and_unknown_assets_fail_at_load(line_with_suites, tmp_path: Path) -> None:
    spec_dir, suites = line_with_suites
    (suites / "raw.flights.json").write_text('{"name": "raw.flights", "expectations": [')
    assert load_error(spec_dir, tmp_path).startswith(f"{display_path(suites / 'raw.flights.json')}: invalid JSON: ")
    (suites / "raw.flights.json").write_bytes(b'{"name": "raw.flights",\n "notes": "caf\xe9"}')
    assert load_error(spec_dir, tmp_path) == (
        f"{display_path(suites / 'raw.flights.json')}: not UTF-8 text: byte 0xe9 on line 2; save the file as UTF-8"
    )
    shutil.copy(REPO / "expectations" / "flights" / "raw.flights.json", suites / "raw.flights.json")
    (suites / "raw.trains.json").write_text('{"name": "raw.trains", "expectations": []}')
    assert load_error(spec_dir, tmp_path).startswith(
        f"{display_path(suites / 'raw.trains.json')}: name: no asset 'raw/trains' to gate"
    )


def test_cli_reports_a_suite_error_in_one_line(line_with_suites, tmp_path: Path, capsys) -> None:
    spec_dir, suites = line_with_suites
    edit_suite(suites, "raw.weather", lambda d: d["expectations"][3].update({"severity": "fatal"}))
    with pytest.raises(SystemExit) as exited:
        main(["validate", *line_args(spec_dir), "--home", str(tmp_path / "home")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"error: {display_path(suites / 'raw.weather.json')}: expectations[3].severity: "
        "expected one of critical, warning, info, got 'fatal'"
    )


def test_severity_maps_to_check_severity() -> None:
    import dagster as dg

    from factory_dagster.gates.gate import Gate

    suite = Suite(
        "t",
        Path("t.json"),
        (
            Expectation(0, "expect_column_values_to_not_be_null", {"column": "a"}, "critical"),
            Expectation(1, "expect_column_values_to_be_between", {"column": "a", "min_value": 0}, "warning"),
            Expectation(2, "expect_column_mean_to_be_between", {"column": "a", "max_value": -5}, "info"),
        ),
        {},
    )
    gate = Gate(dg.AssetKey("t"), suite, "polars")
    warned = gate.check_result(gate.evaluate(pl.DataFrame({"a": [1.0, -2.0]})))
    assert not warned.passed and warned.severity == dg.AssetCheckSeverity.WARN
    blocked = gate.check_result(gate.evaluate(pl.DataFrame({"a": [1.0, None]})))
    assert not blocked.passed and blocked.severity == dg.AssetCheckSeverity.ERROR
    informed = gate.check_result(gate.evaluate(pl.DataFrame({"a": [1.0, 2.0]})))
    assert informed.passed  # an info-level miss is reported, not failed
    assert "❌ fail" in informed.metadata["expectations"].value


@pytest.mark.e2e
def test_warning_gate_publishes_and_does_not_fail_the_build(
    flights_build: Build, line_with_suites, tmp_path: Path, capsys
) -> None:
    spec_dir, suites = line_with_suites

    def drift(document: dict) -> None:
        for e in document["expectations"]:
            if e["type"] == "expect_column_mean_to_be_between" and e["kwargs"]["column"] == "distance":
                e["kwargs"].update({"min_value": 2000, "max_value": 3000})

    edit_suite(suites, "flight_features", drift)
    home = tmp_path / "home"
    shutil.copytree(flights_build.home, home, ignore=shutil.ignore_patterns("dagster"))
    code, out = run_backfill(home, capsys, spec_dir)
    assert code == 0, out
    assert "! flight_features: gate failed (WARN): expect_column_mean_to_be_between(distance): observed 10" in out
    assert re.search(r"flight_features\s+│ built", out)


@pytest.mark.e2e
def test_factory_gates_lists_gates_with_last_results_and_builds_docs(flights_build: Build, capsys) -> None:
    home = flights_build.home
    assert main(["gates", "--format", "json", *line_args(), "--home", str(home), "--docs"]) == 0
    out = capsys.readouterr().out
    listing = json.loads(out[out.index("{") :])
    rows = {row["asset"]: row for row in listing["gates"]}
    assert set(rows) == GATED
    suite = json.loads((REPO / "expectations" / "flights" / "raw.flights.json").read_text())["expectations"]
    severities = [e.get("severity", "critical") for e in suite]
    assert (rows["raw/flights"]["critical"], rows["raw/flights"]["warning"]) == (
        severities.count("critical"),
        severities.count("warning"),
    )
    assert all(row["last_result"]["status"] == "PASSED" for row in rows.values())
    index = home / "gx" / "docs" / "index.html"
    assert index.exists()
    pages = list((home / "gx" / "docs" / "validations").rglob("*.html"))
    assert len(pages) == len(GATED)
    (features_page,) = [p for p in pages if "flight_features" in str(p)]
    text = features_page.read_text()
    assert "quantile" in text.lower() and "origin_delay_rate_7d" in text
