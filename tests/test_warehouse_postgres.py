"""The dbt project on PostgreSQL: each shipped line's models, run unchanged with the `postgres` target
of the factory's dbt profile (storage/dbt_profile), give exactly what they give on the embedded DuckDB warehouse.

The raw tables come from a DuckDB build (the factory lands sources into its DuckDB warehouse) and
are copied into a fresh PostgreSQL database with ADBC (Arrow through COPY, no row-by-row insert);
dbt builds the line's models and runs their dbt tests there through dagster-dbt's DbtCliResource,
the connection given only by the FACTORY_PG_* variables. The oracle is the DuckDB build: the same
relations with the same columns, the same rows per table and per day, the same value in every cell.

Needs the PostgreSQL server of FACTORY_TEST_PG_URI (default: the local one, user postgres, trust
authentication, maintenance database `test`); each test creates its own database and drops it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import duckdb
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from factory_dagster.products import load_line
from factory_dagster.products.dbt_model import dbt_executable
from factory_dagster.spec.dbt_manifest import models_path
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import DBT_PROFILE, DBT_PROFILES_DIR
from tests.conftest import REPO, Build

PROJECT = REPO / "dbt_project"
ADMIN_URI = os.environ.get("FACTORY_TEST_PG_URI", "postgresql://postgres@127.0.0.1:5432/test")
# The flights window run on PostgreSQL: the days around the spring daylight-saving change, where the
# flights' local hours and the weather's UTC hours join only if both sides are zone-correct.
FLIGHTS_WINDOW = (dt.date(2013, 3, 8), dt.date(2013, 3, 12))


def _adbc_connect(uri: str, autocommit: bool = False):
    """An ADBC connection (Arrow in and out of PostgreSQL); imported here, as the driver is an extra."""
    import adbc_driver_postgresql.dbapi

    return adbc_driver_postgresql.dbapi.connect(uri, autocommit=autocommit)


def _uri_of(database: str) -> str:
    return urlunsplit(urlsplit(ADMIN_URI)._replace(path=f"/{database}"))


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards (with any session still on it)."""
    name = f"factory_dbt_{uuid.uuid4().hex[:12]}"
    try:
        admin = _adbc_connect(ADMIN_URI, autocommit=True)
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL at {ADMIN_URI} is unreachable ({str(exc).splitlines()[0]}): start it "
            "(pg_ctlcluster <version> main start) or point FACTORY_TEST_PG_URI at one",
            pytrace=False,
        )
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


def pg_arrow(database: str, sql: str) -> pa.Table:
    with _adbc_connect(_uri_of(database)) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetch_arrow_table()


def duck_arrow(warehouse: Path, sql: str) -> pa.Table:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        con.execute("set TimeZone = 'UTC'")
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def land_raw(warehouse: Path, database: str) -> dict[str, pa.Table]:
    """Copy every table of the DuckDB build's `raw` schema into the same schema on PostgreSQL, each
    through one ADBC bulk ingest (COPY); returns what was copied, by table."""
    tables = duck_arrow(
        warehouse, "select table_name from information_schema.tables where table_schema = 'raw' order by 1"
    ).column("table_name")
    assert tables, f"the DuckDB build at {warehouse} landed no raw table"
    landed = {table: duck_arrow(warehouse, f'select * from raw."{table}"') for table in tables.to_pylist()}
    with _adbc_connect(_uri_of(database)) as con:
        with con.cursor() as cur:
            cur.execute("create schema raw")
            for table, data in landed.items():
                cur.adbc_ingest(table, data, mode="create", db_schema_name="raw")
        con.commit()
    for table, data in landed.items():
        assert pg_arrow(database, f'select count(*) as n from raw."{table}"').column("n")[0].as_py() == data.num_rows
    return landed


@dataclass
class PostgresRun:
    database: str
    schema: str
    manifest: dict


def run_dbt_on_postgres(
    line: str, database: str, target_path: Path, monkeypatch: pytest.MonkeyPatch, window_vars: dict | None = None
) -> PostgresRun:
    """`dbt build` of the line's models with the profile's `postgres` target, its connection given
    by the environment only, through dagster-dbt's CLI resource (dbt in its own process)."""
    from dagster_dbt import DbtCliResource

    schema = "analytics"
    admin = urlsplit(ADMIN_URI)
    for name, value in {
        "FACTORY_PG_HOST": admin.hostname or "127.0.0.1",
        "FACTORY_PG_PORT": str(admin.port or 5432),
        "FACTORY_PG_USER": admin.username or "postgres",
        "FACTORY_PG_PASSWORD": admin.password or "",
        "FACTORY_PG_DBNAME": database,
        "FACTORY_PG_SCHEMA": schema,
        # dbt's sessions in a zone other than the DuckDB build's UTC: a model whose values depend on
        # the session's zone (a timestamptz cast to date or text) differs, and the comparison fails.
        "PGTZ": "America/Los_Angeles",
    }.items():
        monkeypatch.setenv(name, value)
    dbt = DbtCliResource(
        project_dir=str(PROJECT),
        profiles_dir=str(DBT_PROFILES_DIR),
        profile=DBT_PROFILE,
        target="postgres",
        dbt_executable=dbt_executable(),
    )
    args = ["build", "--select", f"path:{models_path(line)}"]
    if window_vars:
        args += ["--vars", json.dumps(window_vars)]
    invocation = dbt.cli(args, target_path=target_path, raise_on_error=False)
    invocation.wait()
    if not invocation.is_successful():
        pytest.fail(f"dbt build on PostgreSQL failed for line {line}: {dbt_errors(target_path)}", pytrace=False)
    manifest = json.loads((target_path / "manifest.json").read_text())
    return PostgresRun(database=database, schema=schema, manifest=manifest)


def dbt_errors(target_path: Path) -> str:
    """What dbt reported as errors in its JSON log (dagster-dbt writes it under the target path)."""
    log = target_path / "dbt.log"
    if not log.is_file():
        return "no dbt.log"
    said = []
    for line in log.read_text().splitlines():
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("info", {}).get("level") == "error" and event["info"].get("msg", "").strip():
            said.append(re.sub(r"\x1b\[[0-9;]*m", "", event["info"]["msg"]).strip())  # no terminal colours
    return " | ".join(said) or "no error logged"


def line_models(manifest: dict, line: str) -> dict[str, str]:
    """The line's models in a manifest: relation name (alias) → materialization."""
    return {
        node["alias"]: node["config"]["materialized"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["original_file_path"].startswith(models_path(line))
    }


def compare_with_duckdb(
    run: PostgresRun, line: str, warehouse: Path, window: tuple[dt.date, dt.date] | None = None
) -> dict[str, int]:
    """Every model of the line on PostgreSQL equals the DuckDB build's: same columns in the same
    order and types, same rows and values (incremental models: the window's rows). Returns the row
    count of each model."""
    models = line_models(run.manifest, line)
    assert models, f"dbt built no model of line {line}"
    present = pg_arrow(
        run.database,
        f"select table_name from information_schema.tables where table_schema = '{run.schema}' order by 1",
    ).column("table_name")
    assert sorted(present.to_pylist()) == sorted(models), "PostgreSQL holds other relations than the line's models"
    spec = load_line(REPO / "lines" / line)
    date_column = spec.line.dbt.partitioned.date_column if spec.line.dbt.partitioned else None
    counts = {}
    for model, materialized in sorted(models.items()):
        where = ""
        if materialized == "incremental":
            assert window is not None and date_column is not None, f"{model} is incremental: give the window"
            where = f" where \"{date_column}\" between date '{window[0]}' and date '{window[1]}'"
        expected = pl.from_arrow(duck_arrow(warehouse, f'select * from main."{model}"{where}'))
        actual = pl.from_arrow(pg_arrow(run.database, f'select * from "{run.schema}"."{model}"'))
        assert isinstance(expected, pl.DataFrame) and isinstance(actual, pl.DataFrame)
        assert actual.columns == expected.columns, f"{model}: columns differ"
        assert dict(actual.schema) == dict(expected.schema), f"{model}: column types differ"
        assert expected.height > 0, f"{model}: the DuckDB build has no rows to compare"
        assert_frame_equal(actual.sort(actual.columns), expected.sort(expected.columns), check_exact=True)
        counts[model] = actual.height
    return counts


def test_flights_models_on_postgres_equal_the_duckdb_build(
    flights_build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = FactoryHome(flights_build.home).warehouse
    first, last = FLIGHTS_WINDOW
    with fresh_database() as database:
        raw = land_raw(warehouse, database)
        run = run_dbt_on_postgres(
            "flights",
            database,
            tmp_path / "dbt",
            monkeypatch,
            {"min_date": first.isoformat(), "max_date": last.isoformat()},
        )
        counts = compare_with_duckdb(run, "flights", warehouse, FLIGHTS_WINDOW)
        fact = (
            pl.from_arrow(pg_arrow(database, 'select flight_date, has_weather from analytics."fct_flights"'))
            .group_by("flight_date")
            .agg(pl.len().alias("rows"), pl.col("has_weather").sum().alias("with_weather"))
        )
        assert isinstance(fact, pl.DataFrame)
    # Rows per day: one per flight of the source that day (the source itself is the oracle).
    source = pl.from_arrow(raw["flights"])
    assert isinstance(source, pl.DataFrame)
    per_day = (
        source.with_columns(flight_date=pl.date(pl.col("year"), pl.col("month"), pl.col("day")))
        .filter(pl.col("flight_date").is_between(first, last))
        .group_by("flight_date")
        .len()
    )
    by_day = {row["flight_date"]: row for row in fact.to_dicts()}
    assert set(by_day) == {first + dt.timedelta(days=n) for n in range((last - first).days + 1)}
    assert {d: r["rows"] for d, r in by_day.items()} == dict(per_day.iter_rows())
    assert counts["fct_flights"] == per_day["len"].sum()
    # The weather join holds across the daylight-saving change (2013-03-10) as on other days.
    assert all(r["with_weather"] >= 0.9 * r["rows"] for r in by_day.values()), by_day
    assert counts["stg_flights"] == raw["flights"].num_rows


def build_sources_and_dbt(home: Path, line: str) -> Path:
    """The line's raw tables and dbt models (nothing downstream) built into `home` on DuckDB with the
    factory's own runner; returns the warehouse."""
    from factory_dagster.execution.instance import factory_instance
    from factory_dagster.execution.runner import execute, partition_tags, resolve_selection
    from factory_dagster.factory import build_definitions

    saved = dict(os.environ)
    for name in ("DAGSTER_HOME", "FACTORY_ROOT", "FACTORY_LINES", "FACTORY_HOME"):
        os.environ.pop(name, None)
    try:
        defs = build_definitions(specs=[load_line(REPO / "lines" / line)], home=home)
        keys = resolve_selection(defs, "+kind:dbt")
        assert keys, f"line {line} has no dbt model"
        report = execute(
            defs, factory_instance(FactoryHome(home)), keys, tags=partition_tags(defs, keys), log_dir=home / "logs"
        )
        assert report.success, f"the {line} line's sources and dbt models did not build: {report.failures}"
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return FactoryHome(home).warehouse


@pytest.mark.e2e
def test_seattle_weather_models_on_postgres_equal_the_duckdb_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = build_sources_and_dbt(tmp_path / "home", "seattle_weather")
    with fresh_database() as database:
        raw = land_raw(warehouse, database)
        run = run_dbt_on_postgres("seattle_weather", database, tmp_path / "dbt", monkeypatch)
        counts = compare_with_duckdb(run, "seattle_weather", warehouse)
    # One row per observed day, in every model (the source is the oracle).
    assert counts == {"stg_seattle_observations": raw["seattle_observations"].num_rows, "fct_seattle_days": 1461}


def test_the_postgres_target_takes_its_connection_from_the_environment_only(tmp_path: Path) -> None:
    """Without the variables dbt refuses the target, naming the first one missing (the default target,
    the embedded DuckDB file, needs none of them: every `factory prepare` runs without them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FACTORY_PG_", "DBT_"))}
    refused = subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--project-dir",
            str(PROJECT),
            "--profiles-dir",
            str(DBT_PROFILES_DIR),
            "--profile",
            DBT_PROFILE,
            "--target",
            "postgres",
        ],
        env={**env, "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "Env var required but not provided: 'FACTORY_PG_USER'" in refused.stdout + refused.stderr
    assert not (tmp_path / "target" / "manifest.json").exists()
