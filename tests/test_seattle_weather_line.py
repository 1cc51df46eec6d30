"""The seattle_weather line, built end to end into a temporary factory home.

Every value is checked against an oracle that does not go through the factory: the package's CSV
read with the csv module, SQL over the warehouse, scikit-learn's metrics on the stored artifact.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import math
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.dummy import DummyRegressor
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from factory_dagster.products.training import input_frame, score_frame
from factory_dagster.storage.artifacts import ModelRegistry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import REPO, Build, build_shipped_line, latest_metadata, query

pytestmark = pytest.mark.e2e

LINE = "seattle_weather"
MODEL = "seattle_high_temp"
FEATURES = "seattle_day_features"
PREDICTIONS = "seattle_high_temp_forecasts"


def package_file(package: str, inner: str) -> Path:
    """A file shipped inside an installed package (located without importing the package)."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.submodule_search_locations, (
        f"{package} is not installed: it is the line's data package (lines/{LINE}/requirements.txt)"
    )
    return Path(next(iter(spec.submodule_search_locations))) / inner


CSV_FILE = package_file("vega_datasets", "_data/seattle-weather.csv")


def read_csv() -> list[dict[str, str]]:
    """The package's file, read with the csv module, independently of the factory."""
    with CSV_FILE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def observations() -> dict[dt.date, dict[str, float | str]]:
    """Day → the CSV's values, typed by hand (the date is YYYY/MM/DD text)."""
    out: dict[dt.date, dict[str, float | str]] = {}
    for row in read_csv():
        day = dt.datetime.strptime(row["date"], "%Y/%m/%d").date()
        assert day not in out, f"{day} appears twice in {CSV_FILE}"
        out[day] = {
            "temp_max": float(row["temp_max"]),
            "temp_min": float(row["temp_min"]),
            "precipitation": float(row["precipitation"]),
            "wind": float(row["wind"]),
            "weather": row["weather"],
        }
    return out


def model_spec() -> dict:
    return yaml.safe_load((REPO / "lines" / LINE / "models.yaml").read_text())["models"][MODEL]


def predictions_spec() -> dict:
    return yaml.safe_load((REPO / "lines" / LINE / "predictions.yaml").read_text())["predictions"][PREDICTIONS]


@pytest.fixture(scope="module")
def seattle_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The seattle_weather line built once into a temporary factory home."""
    return build_shipped_line(tmp_path_factory.mktemp("seattle_home"), LINE)


def table(build: Build, sql: str) -> pl.DataFrame:
    con = duckdb.connect(str(FactoryHome(build.home).warehouse), read_only=True)
    try:
        return pl.DataFrame(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def read_features(build: Build) -> pl.DataFrame:
    return pl.read_parquet(latest_metadata(build, FEATURES)["dagster/uri"])


def windows(build: Build) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """(train start, train end, test start, test end) of the spec's split, ending at the last day."""
    split = model_spec()["split"]
    assert split["end"] == "latest"
    last = query(build, "select max(observed_on) from fct_seattle_days")[0][0]
    test_start = last - dt.timedelta(days=split["test_days"] - 1)
    train_end = test_start - dt.timedelta(days=1)
    return train_end - dt.timedelta(days=split["train_days"] - 1), train_end, test_start, last


def test_the_whole_line_materializes(seattle_build: Build) -> None:
    report = seattle_build.reports[0]
    assert report.success, report.failures
    assert report.not_built() == []
    assert not report.failed_checks("ERROR")
    assert set(report.assets) >= {
        "raw/seattle_observations",
        "stg_seattle_observations",
        "fct_seattle_days",
        FEATURES,
        MODEL,
        PREDICTIONS,
    }


def test_the_source_is_the_four_years_of_the_package_file() -> None:
    days = observations()
    assert len(days) == 1461  # 2012-01-01 .. 2015-12-31, one row per day
    assert min(days) == dt.date(2012, 1, 1) and max(days) == dt.date(2015, 12, 31)


def test_raw_row_count_equals_the_package_file(seattle_build: Build) -> None:
    expected = len(read_csv())
    assert query(seattle_build, "select count(*) from raw.seattle_observations")[0][0] == expected
    assert latest_metadata(seattle_build, "raw/seattle_observations")["dagster/row_count"] == expected
    # Landed as declared: the text date untouched, the numbers as doubles.
    first = query(seattle_build, "select date, temp_max, weather from raw.seattle_observations order by date limit 1")[
        0
    ]
    row = read_csv()[0]
    assert first == (row["date"], float(row["temp_max"]), row["weather"])


def test_the_mart_has_one_row_per_day_with_the_file_values(seattle_build: Build) -> None:
    rows, ids, days = query(
        seattle_build, "select count(*), count(distinct day_id), count(distinct observed_on) from fct_seattle_days"
    )[0]
    expected = observations()
    assert rows == ids == days == len(expected)
    assert (
        query(
            seattle_build,
            "select count(*) from fct_seattle_days where day_id is null or observed_on is null or temp_max_c is null",
        )[0][0]
        == 0
    )
    mart = table(seattle_build, "select * from fct_seattle_days")
    assert mart.get_column("day_id").is_unique().all()
    # Every value against the CSV, day by day.
    for record in mart.iter_rows(named=True):
        source = expected[record["observed_on"]]
        assert record["day_id"] == f"seattle-{record['observed_on'].isoformat()}"
        assert record["station"] == "seattle"
        assert record["temp_max_c"] == source["temp_max"]
        assert record["temp_min_c"] == source["temp_min"]
        assert record["precipitation_mm"] == source["precipitation"]
        assert record["wind_speed_ms"] == source["wind"]
        assert record["condition"] == source["weather"]
        assert record["temp_range_c"] == pytest.approx(source["temp_max"] - source["temp_min"], abs=1e-9)
        assert record["is_wet_day"] == (source["precipitation"] > 0)
        assert record["is_frost_day"] == (source["temp_min"] <= 0)
    assert latest_metadata(seattle_build, "fct_seattle_days")["dagster/row_count"] == rows


def test_history_features_only_see_earlier_days(seattle_build: Build) -> None:
    """Lags and rolling means recomputed from the CSV over strictly earlier days."""
    features = read_features(seattle_build)
    days = observations()
    assert features.height == len(days)
    assert features.get_column("day_id").is_unique().all()
    for record in features.iter_rows(named=True):
        day = record["observed_on"]
        yesterday = days.get(day - dt.timedelta(days=1))
        week = [days[d]["temp_max"] for k in range(1, 8) if (d := day - dt.timedelta(days=k)) in days]
        month = [days[d]["temp_max"] for k in range(1, 31) if (d := day - dt.timedelta(days=k)) in days]
        sunny = sum(days[d]["weather"] == "sun" for k in range(1, 8) if (d := day - dt.timedelta(days=k)) in days)
        assert record["temp_max_c"] == days[day]["temp_max"]  # the label, carried for training
        if yesterday is None:
            assert record["temp_max_1d"] is None and record["temp_max_7d"] is None
        else:
            assert record["temp_max_1d"] == yesterday["temp_max"]
            assert record["temp_min_1d"] == yesterday["temp_min"]
            assert record["precipitation_1d"] == yesterday["precipitation"]
            assert record["temp_max_7d"] == pytest.approx(sum(week) / len(week), abs=1e-9)
            assert record["temp_max_30d"] == pytest.approx(sum(month) / len(month), abs=1e-9)
            assert record["temp_max_trend"] == pytest.approx(yesterday["temp_max"] - sum(week) / len(week), abs=1e-9)
        assert record["sunny_days_7d"] == sunny
        assert record["day_of_year"] == day.timetuple().tm_yday
        assert record["month"] == day.month
    assert "is_sunny" not in features.columns  # keep: false


def test_model_beats_the_dummy_baseline_on_the_held_out_year(seattle_build: Build) -> None:
    meta = latest_metadata(seattle_build, MODEL)
    train_start, train_end, test_start, test_end = windows(seattle_build)
    assert meta["train_window"] == f"{train_start}..{train_end}"
    assert meta["test_window"] == f"{test_start}..{test_end}"

    # The stored artifact, hash-checked, scored on the test window with scikit-learn's metrics.
    registry = ModelRegistry(Path(meta["dagster/uri"]).parent)
    pipeline, version = registry.load(expected_sha256=meta["artifact_sha256"])
    assert version.version == meta["model_version"]
    features = read_features(seattle_build)
    day = pl.col("observed_on")
    train = features.filter(day.is_between(train_start, train_end))
    test = features.filter(day.is_between(test_start, test_end))
    assert meta["train_rows"] == train.height == (train_end - train_start).days + 1
    assert meta["test_rows"] == test.height == (test_end - test_start).days + 1
    y_test = test.get_column("temp_max_c").to_numpy()
    predicted = score_frame(pipeline, "regression", input_frame(test, version.details["features"]))
    rmse = math.sqrt(mean_squared_error(y_test, predicted))
    assert rmse == pytest.approx(meta["metric/rmse"], abs=1e-9)
    assert mean_absolute_error(y_test, predicted) == pytest.approx(meta["metric/mae"], abs=1e-9)
    assert r2_score(y_test, predicted) == pytest.approx(meta["metric/r2"], abs=1e-9)

    # The baseline, refitted independently: the mean of the training labels.
    y_train = train.get_column("temp_max_c").to_numpy()
    dummy = DummyRegressor(strategy="mean").fit(np.zeros((len(y_train), 1)), y_train)
    baseline = dummy.predict(np.zeros((len(y_test), 1)))
    baseline_rmse = math.sqrt(mean_squared_error(y_test, baseline))
    assert baseline_rmse == pytest.approx(meta["baseline/rmse"], abs=1e-9)
    assert mean_absolute_error(y_test, baseline) == pytest.approx(meta["baseline/mae"], abs=1e-9)

    # Measured when the line was written: rmse 2.66 °C against 7.43 °C, r2 0.87 against -0.03.
    assert rmse < 0.5 * baseline_rmse
    assert meta["metric/mae"] < meta["baseline/mae"]
    promotion = model_spec()["promotion"]
    assert meta["metric/r2"] >= promotion["min"]["r2"]
    assert rmse <= promotion["max"]["rmse"]
    # It also beats persistence (tomorrow's high = today's), the forecaster's naive baseline.
    persistence = test.get_column("temp_max_1d").to_numpy()
    assert rmse < math.sqrt(mean_squared_error(y_test, persistence))
    assert meta["seed"] == 42 and len(meta["training_data_sha256"]) == 64


def test_predictions_score_the_latest_days_with_the_served_model(seattle_build: Build) -> None:
    meta = latest_metadata(seattle_build, PREDICTIONS)
    model_meta = latest_metadata(seattle_build, MODEL)
    last_days = predictions_spec()["score"]["last_days"]
    predictions = pl.read_parquet(meta["dagster/uri"]).sort("observed_on")
    _, _, _, last = windows(seattle_build)
    assert predictions.height == last_days
    assert predictions.get_column("observed_on").to_list() == [
        last - dt.timedelta(days=k) for k in reversed(range(last_days))
    ]
    assert predictions.get_column("day_id").is_unique().all()
    assert predictions.get_column("model_version").unique().to_list() == [model_meta["model_version"]]
    assert set(predictions.columns) == {"day_id", "observed_on", "score", "model_name", "model_version", "scored_at"}
    # The scores are the served artifact's predictions on those days' features.
    registry = ModelRegistry(Path(model_meta["dagster/uri"]).parent)
    pipeline, version = registry.load(expected_sha256=model_meta["artifact_sha256"])
    features = read_features(seattle_build).join(predictions.select("day_id"), on="day_id").sort("observed_on")
    expected = score_frame(pipeline, "regression", input_frame(features, version.details["features"]))
    np.testing.assert_allclose(predictions.get_column("score").to_numpy(), expected, atol=1e-9)
    # Against what was observed on those days (the CSV): a forecast, not a guess.
    days = observations()
    actual = np.array([days[d]["temp_max"] for d in predictions.get_column("observed_on")])
    assert math.sqrt(mean_squared_error(actual, predictions.get_column("score").to_numpy())) < 4.0
    # SQL readers see the same rows through the warehouse view.
    assert query(seattle_build, f"select count(*) from predictions.{PREDICTIONS}")[0][0] == last_days


def test_assets_carry_owners_descriptions_and_code_versions(seattle_build: Build) -> None:
    graph = seattle_build.defs.resolve_asset_graph()
    kinds = {
        "raw/seattle_observations": {"duckdb", "polars"},
        "fct_seattle_days": {"dbt", "duckdb"},
        FEATURES: {"polars", "parquet"},
        MODEL: {"scikitlearn"},
        PREDICTIONS: {"scikitlearn", "polars", "parquet"},
    }
    for key, expected in kinds.items():
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert expected <= set(node.kinds), key
        assert node.owners and node.description and node.code_version, key
    assert graph.get(dg.AssetKey("fct_seattle_days")).parent_keys == {dg.AssetKey("stg_seattle_observations")}
    assert graph.get(dg.AssetKey("stg_seattle_observations")).parent_keys == {
        dg.AssetKey(["raw", "seattle_observations"])
    }
    schema = latest_metadata(seattle_build, FEATURES)["dagster/column_schema"]
    assert "temp_max_30d" in [c.name for c in schema.columns]
