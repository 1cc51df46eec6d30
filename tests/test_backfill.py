"""`factory backfill` from nothing: what the range needs is built once first, or named."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path

import duckdb
import polars as pl
import pytest

from benchmarks.partition_line import LINE, START, partition_root
from factory_dagster.cli import main
from factory_dagster.products.dbt_model import prepare_dbt_project
from factory_dagster.storage.home import FactoryHome

pytestmark = pytest.mark.e2e  # a dbt compile and four dbt runs (≈2.5 min on a loaded 2-core machine)

DAYS = 12
FIRST, LAST = START + dt.timedelta(days=3), START + dt.timedelta(days=5)
STATIONS = "station,name\nA,Alpha\nB,Bravo\nC,Charlie\nD,Delta\n"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The many-days benchmark line, short, whose daily model joins an unpartitioned dimension
    (a `stations` source and its `station_names` model), compiled once."""
    root, _ = partition_root(tmp_path_factory.mktemp("backfill") / "root", days=DAYS)
    line, models = root / "lines" / LINE, root / "dbt_project" / "models" / LINE
    (line / "stations.csv").write_text(STATIONS)
    with (line / "sources.yaml").open("a") as sources:
        sources.write(
            textwrap.indent(
                textwrap.dedent("""\
                stations:
                  description: The stations' names.
                  owner: team:bench
                  file: stations.csv
                  primary_key: [station]
                  columns: {station: string, name: string}
                """),
                "  ",
            )
        )
    (models / "_stations.yml").write_text(
        "version: 2\nsources:\n  - name: raw_stations\n    schema: raw\n"
        "    tables: [{name: stations, description: The landed stations.}]\n"
        "models:\n  - name: station_names\n    description: A name per station.\n"
    )
    (models / "station_names.sql").write_text("select station, name from {{ source('raw_stations', 'stations') }}\n")
    daily = models / "daily_readings.sql"
    daily.write_text(
        daily.read_text()
        .replace("select day, station,", "select day, r.station, any_value(n.name) as station_name,")
        .replace(
            "from {{ source('raw', 'readings') }}",
            "from {{ source('raw', 'readings') }} as r join {{ ref('station_names') }} as n on r.station = n.station",
        )
        .replace("group by day, station", "group by day, r.station")
    )
    prepare_dbt_project(root / "dbt_project")
    return root


def backfill(
    root: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    window: tuple[dt.date, dt.date] = (FIRST, LAST),
) -> tuple[int, str]:
    args = ["backfill", "--start", str(window[0]), "--end", str(window[1]), "--no-prepare", "--home", str(home)]
    code = main([*args, "--root", str(root), "--line", LINE, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def query(home: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(FactoryHome(home).warehouse), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_a_backfill_from_nothing_builds_the_unpartitioned_upstreams_once_first(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    code, out = backfill(root, home, capsys)
    assert code == 0, out
    assert "First, once: raw/stations, station_names (never built in this home)" in " ".join(out.split())
    readings = pl.read_csv(root / "lines" / LINE / "readings.csv", try_parse_dates=True)
    window = readings.filter(pl.col("day").is_between(FIRST, LAST))
    assert query(home, "select count(*) from raw.stations") == [(STATIONS.count("\n") - 1,)]
    assert query(home, "select count(*) from raw.readings") == [(window.height,)]
    expected = window.group_by("day", "station").len().sort("day", "station")
    built = query(home, "select day, station, readings from main.daily_readings order by day, station")
    assert built == expected.rows()
    assert query(home, "select count(*) from main.daily_readings where station_name is null") == [(0,)]

    code, out = backfill(root, home, capsys)  # built now: the range alone
    assert code == 0, out
    assert "First, once" not in out

    copy = tmp_path / "copy"  # a home copied without its Dagster instance: the tables tell
    shutil.copytree(home, copy, ignore=shutil.ignore_patterns("dagster"))
    code, out = backfill(root, copy, capsys)
    assert code == 0, out
    assert "First, once" not in out

    day = LAST + dt.timedelta(days=2)  # another window: dbt re-parses only the model reading it
    code, out = backfill(root, home, capsys, window=(day, day))
    assert code == 0, out
    (run,) = sorted((home / "dbt" / "runs").glob(f"{LINE}_dbt_daily_models-*"), key=lambda p: p.stat().st_mtime)[-1:]
    log = (run / "dbt.log").read_text()
    assert "Partial parsing enabled: 0 files deleted, 0 files added, 1 files changed." in log
    assert query(home, "select count(*) from raw.readings") == [
        (readings.filter(pl.col("day").is_between(FIRST, LAST) | (pl.col("day") == day)).height,)
    ]


def test_a_partitioned_upstream_never_built_is_named_not_run(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    code, out = backfill(root, home, capsys, "--select", "daily_readings")
    assert code == 1
    assert " ".join(out.split()) == (
        "not backfilled: daily_readings: it needs raw/readings, never built in this home and made from "
        "partitions; build it first (factory build --select '+raw/readings')"
    )
    assert not FactoryHome(home).warehouse.exists() or query(
        home, "select count(*) from information_schema.tables where table_name = 'daily_readings'"
    ) == [(0,)]
