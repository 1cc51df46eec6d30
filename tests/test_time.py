"""Daily partitions, the landing zone and its sensor, schedules, automation, backfills."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from factory_dagster.cli import main
from factory_dagster.factory import build_definitions
from tests.conftest import FLIGHTS, REPO, Build, line_args
from tests.test_flights_line import DATA

DAILY = ["raw/flights", "stg_flights", "int_flights_enriched", "fct_flights", "flight_features", "delay_predictions"]
UNPARTITIONED = ["raw/weather", "raw/planes", "dim_carriers", "dim_airports", "dim_planes", "delay_classifier"]


def source_days() -> Counter:
    """Flights per local day in the source file, counted with the csv module."""
    with zipfile.ZipFile(DATA / "flights.csv.zip") as archive:
        rows = csv.DictReader(io.StringIO(archive.read(archive.namelist()[0]).decode()))
        return Counter(dt.date(int(r["year"]), int(r["month"]), int(r["day"])) for r in rows)


@pytest.fixture(scope="module")
def per_day() -> Counter:
    return source_days()


def day_counts(home: Path, sql: str) -> dict[dt.date, int]:
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        return dict(con.execute(sql).fetchall())
    finally:
        con.close()


def copy_home(build: Build, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(build.home, home, ignore=shutil.ignore_patterns("dagster"))
    return home


@pytest.mark.e2e
def test_partitions_are_declared_on_the_flights_chain(flights_build: Build) -> None:
    graph = flights_build.defs.resolve_asset_graph()
    for key in DAILY:
        definition = graph.get(dg.AssetKey.from_user_string(key)).partitions_def
        assert isinstance(definition, dg.DailyPartitionsDefinition), key
        assert definition.timezone == "America/New_York"
        keys = definition.get_partition_keys()
        assert (keys[0], keys[-1], len(keys)) == ("2013-01-01", "2013-12-31", 365)
    for key in UNPARTITIONED:
        assert graph.get(dg.AssetKey.from_user_string(key)).partitions_def is None, key
    features = graph.get(dg.AssetKey("flight_features"))
    mapping = features.partition_mappings[dg.AssetKey("fct_flights")]
    assert isinstance(mapping, dg.TimeWindowPartitionMapping) and mapping.start_offset == -7


@pytest.mark.e2e
def test_per_day_rows_in_the_partitioned_marts_equal_the_source(flights_build: Build, per_day: Counter) -> None:
    home = flights_build.home
    assert day_counts(home, "select flight_date, count(*) from fct_flights group by all") == dict(per_day)
    assert day_counts(home, "select make_date(year, month, day), count(*) from raw.flights group by all") == dict(
        per_day
    )
    features = day_counts(
        home,
        "select cast(scheduled_departure as date), count(*) from read_parquet("
        f"'{home}/features/flight_features/*.parquet') group by all",
    )
    assert features == dict(per_day)
    assert len(list((home / "features" / "flight_features").glob("2013-*.parquet"))) == 365


@pytest.mark.e2e
def test_automation_and_freshness_are_declared(flights_build: Build) -> None:
    graph = flights_build.defs.resolve_asset_graph()
    for key in ["stg_flights", "fct_flights", "dim_airports", "flight_features", "delay_predictions"]:
        condition = graph.get(dg.AssetKey.from_user_string(key)).automation_condition
        assert condition is not None and "gates passed" in condition.get_label(), key
    for key in ["raw/flights", "delay_classifier"]:  # sensors and schedules drive these
        assert graph.get(dg.AssetKey.from_user_string(key)).automation_condition is None
    model = graph.get(dg.AssetKey("delay_classifier")).freshness_policy
    assert model.fail_window.to_timedelta() == dt.timedelta(days=8)
    predictions = graph.get(dg.AssetKey("delay_predictions")).freshness_policy
    assert predictions.fail_window.to_timedelta() == dt.timedelta(hours=50)
    repo = flights_build.defs.get_repository_def()
    assert {"flights_landing", "flights_automation"} <= {s.name for s in repo.sensor_defs}
    assert {"flights_daily", "weekly_retrain"} <= {s.name for s in repo.schedule_defs}


def test_automation_waits_for_blocking_checks() -> None:
    """Across runs, the downstream asset follows its upstream only once the upstream gate passed."""
    from factory_dagster.automation.conditions import follow_upstream

    outcome = {"passed": False}

    @dg.asset(check_specs=[dg.AssetCheckSpec("gate", asset="up", blocking=True)])
    def up():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="gate", passed=outcome["passed"])

    @dg.asset(deps=[up], automation_condition=follow_upstream())
    def down():
        return None

    defs = dg.Definitions(assets=[up, down])
    instance = dg.DagsterInstance.ephemeral()
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    assert result.total_requested == 0
    dg.materialize([up], instance=instance, raise_on_error=False)  # the gate fails
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.total_requested == 0
    outcome["passed"] = True
    dg.materialize([up], instance=instance)
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    assert result.get_requested_partitions(dg.AssetKey("down")) == {None}


def sensor_of(defs: dg.Definitions, name: str) -> dg.SensorDefinition:
    return defs.get_repository_def().get_sensor_def(name)


@pytest.mark.e2e
def test_landing_sensor_requests_new_and_changed_files_once(flights_build: Build, tmp_path: Path) -> None:
    home = copy_home(flights_build, tmp_path)
    defs = build_definitions(FLIGHTS, home=home)
    sensor = sensor_of(defs, "flights_landing")
    folder = home / "landing" / "flights"
    assert main(["replay", "--start", "2013-05-01", "--end", "2013-05-02", "--home", str(home), *line_args()]) == 0
    context = dg.build_sensor_context(resources={"factory": defs.resources["factory"]})
    first = sensor(context)
    assert sorted(r.partition_key for r in first.run_requests) == ["2013-05-01", "2013-05-02"]
    assert all(r.run_key.startswith(r.partition_key) for r in first.run_requests)
    context.update_cursor(first.cursor)
    again = sensor(context)
    assert again.run_requests == [] and "no new or changed file" in again.skip_reason.skip_message
    context.update_cursor(again.cursor)
    (folder / "2014-02-01.csv").write_text("year\n")
    (folder / "notes.txt").write_text("hello")
    refused = sensor(context)
    assert refused.run_requests == []
    assert (
        "2014-02-01.csv: 2014-02-01 is outside the partitions 2013-01-01..2013-12-31"
        in refused.skip_reason.skip_message
    )
    assert "notes.txt: not a .csv or .parquet file" in refused.skip_reason.skip_message
    context.update_cursor(refused.cursor)
    changed = folder / "2013-05-02.csv"
    changed.write_text(changed.read_text().replace(",EWR,", ",JFK,", 1))
    third = sensor(context)
    assert [r.partition_key for r in third.run_requests] == ["2013-05-02"]
    context.update_cursor(third.cursor)
    assert sensor(context).run_requests == []


@pytest.mark.e2e
def test_schedules_target_the_latest_landed_day_and_the_model(flights_build: Build, tmp_path: Path) -> None:
    home = copy_home(flights_build, tmp_path)
    defs = build_definitions(FLIGHTS, home=home)
    repo = defs.get_repository_def()
    factory = {"factory": defs.resources["factory"]}
    daily = repo.get_schedule_def("flights_daily")
    assert daily.cron_schedule == "0 6 * * *" and daily.execution_timezone == "America/New_York"
    tick = dt.datetime(2026, 11, 24, 6, tzinfo=dt.UTC)

    def context() -> dg.ScheduleEvaluationContext:
        return dg.build_schedule_context(resources=factory, scheduled_execution_time=tick, repository_def=repo)

    empty = daily.evaluate_tick(context())
    assert empty.skip_message == "no file in the landing zone yet"
    assert main(["replay", "--start", "2013-07-03", "--end", "2013-07-04", "--home", str(home), *line_args()]) == 0
    data = daily.evaluate_tick(context())
    (request,) = data.run_requests
    assert request.partition_key == "2013-07-04" and request.tags["factory/schedule"] == "flights_daily"
    retrain = repo.get_schedule_def("weekly_retrain")
    assert retrain.cron_schedule == "0 7 * * 1"
    (request,) = retrain.evaluate_tick(context()).run_requests
    assert request.partition_key is None
    assert repo.get_job(retrain.job_name).asset_layer.executable_asset_keys == {dg.AssetKey("delay_classifier")}


@pytest.mark.e2e
def test_a_landing_file_with_rows_from_another_day_is_refused(
    flights_build: Build, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = copy_home(flights_build, tmp_path)
    assert main(["replay", "--start", "2013-03-05", "--end", "2013-03-06", "--home", str(home), *line_args()]) == 0
    folder = home / "landing" / "flights"
    lines = (folder / "2013-03-06.csv").read_text().splitlines()
    with open(folder / "2013-03-05.csv", "a") as handle:
        handle.write(lines[1] + "\n")
    (folder / "2013-03-06.csv").unlink()
    before = day_counts(home, "select make_date(year, month, day), count(*) from raw.flights group by all")
    code = main(
        ["backfill", "--start", "2013-03-05", "--end", "2013-03-05", "--no-prepare", "--home", str(home), *line_args()]
    )
    out = capsys.readouterr().out
    assert code == 1
    stray_row = sum(1 for _ in open(folder / "2013-03-05.csv")) - 1  # the last data row
    expected = (
        f"landing/flights/2013-03-05.csv: row {stray_row} is dated 2013-03-06, not 2013-03-05: "
        "a landing file holds the rows of its own day only"
    )
    assert any(expected in line for line in out.splitlines()), out
    assert day_counts(home, "select make_date(year, month, day), count(*) from raw.flights group by all") == before


@pytest.mark.e2e
def test_a_90_day_backfill_is_idempotent(
    flights_build: Build, tmp_path: Path, per_day: Counter, capsys: pytest.CaptureFixture[str]
) -> None:
    home = copy_home(flights_build, tmp_path)
    tables = ["raw.flights", "int_flights_enriched", "fct_flights", "predictions.delay_predictions"]

    def counts() -> dict[str, object]:
        out: dict[str, object] = {t: day_counts(home, f"select count(*), 1 from {t} group by all") for t in tables}
        out["per_day"] = day_counts(home, "select flight_date, count(*) from fct_flights group by all")
        return out

    before = counts()
    for attempt in range(2):
        code = main(
            [
                "backfill",
                "--start",
                "2013-01-01",
                "--end",
                "2013-03-31",
                "--no-prepare",
                "--home",
                str(home),
                *line_args(),
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert counts() == before, f"backfill {attempt + 1} changed row counts"
    partition_lines = [line for line in out.splitlines() if re.match(r"^│ 2013-\d\d-\d\d │", line)]
    assert len(partition_lines) == 90
    jan_2 = next(line for line in partition_lines if line.startswith("│ 2013-01-02"))
    assert f"{per_day[dt.date(2013, 1, 2)]:,}" in jan_2
    assert before["per_day"] == dict(per_day)


@pytest.mark.e2e
def test_dagster_cli_materializes_a_partition_range(flights_build: Build, tmp_path: Path, per_day: Counter) -> None:
    home = copy_home(flights_build, tmp_path)
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("delete from raw.flights where month = 2 and day between 1 and 3")
    con.close()
    dagster = Path(sys.executable).with_name("dagster")
    env = {
        **os.environ,
        "FACTORY_HOME": str(home),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "FACTORY_ROOT": str(REPO),
        "FACTORY_LINES": "flights",
    }
    (tmp_path / "dagster_home").mkdir()
    result = subprocess.run(
        [
            str(dagster),
            "asset",
            "materialize",
            "-m",
            "factory_dagster.definitions",
            "-a",
            "defs",
            "--select",
            "raw/flights,stg_flights,int_flights_enriched,fct_flights,flight_features",
            "--partition-range",
            "2013-02-01...2013-02-03",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    raw = day_counts(
        home, "select make_date(year, month, day), count(*) from raw.flights where month = 2 and day <= 3 group by all"
    )
    assert raw == {d: per_day[d] for d in (dt.date(2013, 2, 1), dt.date(2013, 2, 2), dt.date(2013, 2, 3))}


def test_warehouse_reads_do_not_depend_on_the_machine_time_zone(tmp_path: Path) -> None:
    """DuckDB casts and exports aware timestamps in the process's zone unless told otherwise."""
    code = (
        "import sys; from pathlib import Path; from factory_dagster.storage.duckdb_warehouse import DuckDBWarehouse\n"
        "t = DuckDBWarehouse(Path(sys.argv[1])).read_arrow(\"select timestamptz '2013-01-02 20:30:00+00' as t, "
        "cast(timestamptz '2013-01-02 20:30:00+00' as date) as d\")\n"
        "print(t.schema.field('t').type.tz, t.column('d')[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        env={**os.environ, "TZ": "Asia/Tokyo"},
        check=True,
        cwd=REPO,
    ).stdout
    assert out.split() == ["UTC", "2013-01-02"]
