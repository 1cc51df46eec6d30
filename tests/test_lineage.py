"""Column lineage of the flights line, `factory lineage`, `factory debt` and the governance assets."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from factory_dagster.cli import main
from factory_dagster.execution.runner import execute
from tests.conftest import Build, line_args

pytestmark = pytest.mark.e2e


def lineage(build: Build, capsys, *args: str) -> dict:
    assert main(["lineage", *args, "--format", "json", *line_args(), "--home", str(build.home)]) == 0
    return json.loads(capsys.readouterr().out)


def test_weather_visibility_traces_to_the_model_and_the_scores(flights_build: Build, capsys) -> None:
    result = lineage(flights_build, capsys, "weather.visib", "--downstream")
    assert result["target"] == {"asset": "raw/weather", "column": "visib"}
    reached = [(c["asset"], c["column"], c["distance"]) for c in result["columns"]]
    assert reached[:4] == [
        ("stg_weather", "visibility_mi", 1),
        ("int_flights_enriched", "visibility_mi", 2),
        ("fct_flights", "visibility_mi", 3),
        ("flight_features", "visibility_mi", 4),
    ]
    assert ("delay_classifier", "visibility_mi", 5) in reached
    assert ("delay_predictions", "score", 6) in reached
    assert not any(c["asset"] == "dim_airports" for c in result["columns"])


def test_what_feeds_the_model(flights_build: Build, capsys) -> None:
    result = lineage(flights_build, capsys, "delay_classifier", "--upstream")
    columns = {(c["asset"], c["column"]) for c in result["columns"]}
    assert {
        ("raw/weather", "visib"),
        ("raw/weather", "precip"),
        ("raw/flights", "carrier"),
        ("raw/planes", "year"),
        ("raw/airports", "alt"),
        ("raw/flights", "dep_delay"),
    } <= columns
    assert ("raw/weather", "dewp") not in columns  # dropped on the way: it feeds nothing
    origin = lineage(flights_build, capsys, "delay_classifier.origin_delay_rate_7d")
    assert {(c["asset"], c["column"]) for c in origin["columns"]} >= {
        ("fct_flights", "dep_delay"),
        ("fct_flights", "origin"),
    }


def test_lineage_of_an_unknown_asset_is_one_line(flights_build: Build, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["lineage", "nope.column", *line_args(), "--home", str(flights_build.home)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no asset named 'nope.column' (assets: ") and "\n" not in err
    with pytest.raises(SystemExit):
        main(["lineage", "fct_flight.origin", *line_args(), "--home", str(flights_build.home)])
    assert (
        capsys.readouterr()
        .err.strip()
        .startswith("error: no asset named 'fct_flight.origin' (did you mean fct_flights, ")
    )


def test_factory_debt_on_the_flights_line(flights_build: Build, capsys) -> None:
    assert main(["debt", "--format", "json", *line_args(), "--home", str(flights_build.home), "--fail-on", "low"]) == 0
    lines = json.loads(capsys.readouterr().out)["lines"]
    assert list(lines) == ["flights"]
    report = lines["flights"]
    assert report["debt"]["findings"] == []
    accepted = {(f["rule"], f["assets"][0]): f["excepted_by"] for f in report["debt"]["excepted"]}
    assert set(accepted) == {("TD11", "fct_flights"), ("TD11", "dim_carriers")}
    assert all(reason.strip() for reason in accepted.values())
    by_model = {s["model"]: s for s in report["ml_test_score"]}
    assert sorted(by_model) == ["delay_classifier", "delay_logit"]  # the slot's challenger is scored too
    score = by_model["delay_classifier"]
    assert len(score["tests"]) == 28 and len(by_model["delay_logit"]["tests"]) == 28
    tests = {t["id"]: t for t in score["tests"]}
    assert tests["M5"]["score"] == 1 and "roc_auc" in tests["M5"]["evidence"]
    assert tests["M6"]["score"] == 1 and "carrier, origin" in tests["M6"]["evidence"]
    assert tests["I3"]["score"] == 1
    assert score["score"] == min(score["sections"].values())
    reports = flights_build.home / "reports" / "flights"  # a report per line
    assert json.loads((reports / "debt.json").read_text()) == report
    html = (reports / "debt.html").read_text()
    assert "<svg" in html and "delay_classifier" in html and "ML Test Score" in html


def test_governance_assets_render_markdown(flights_build: Build, tmp_path) -> None:
    keys = [dg.AssetKey("technical_debt_report"), dg.AssetKey("ml_test_score")]
    report = execute(flights_build.defs, flights_build.instance, keys, log_dir=tmp_path)
    assert report.success, report.failures
    debt = report.assets["technical_debt_report"].metadata
    assert debt["debt_score"] == 0 and debt["findings"] == "**line flights**\n\nNo debt found."
    assert debt["lines"] == {"flights": {"debt_score": 0, "high": 0, "medium": 0, "low": 0}}
    assert debt["html_report/flights"] == str(flights_build.home / "reports" / "flights" / "debt.html")
    assert debt["accepted_by_exceptions"] == 2
    score = report.assets["ml_test_score"].metadata
    assert score["delay_classifier/tests"].startswith("**delay_classifier: ML Test Score ")
    assert "| D1 | Feature expectations are captured in a schema | 1 |" in score["delay_classifier/tests"]
    graph = flights_build.defs.resolve_asset_graph()
    assert graph.get(dg.AssetKey("technical_debt_report")).group_name == "governance"
