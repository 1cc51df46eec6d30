"""A line with about 5,000 daily partitions and little data, written as a temporary factory root.

Its cost is bookkeeping, not data: a `readings` source (about 2.5 rows a day, one CSV) landed day
by day, and one incremental dbt model rebuilt per partition window. What such a build costs in
time and in Dagster storage is what the partition benchmark measures.

    python -m benchmarks.partition_line --out /tmp/bench/many_days [--days 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import textwrap
from pathlib import Path

import numpy as np

from benchmarks.flights_data import REPO

LINE = "many_days"
START = dt.date(2000, 1, 1)


def write_readings(path: Path, days: int, rows_per_day: float = 2.5, seed: int = 0) -> int:
    """Readings spread over `days` days from START (a day may have none); the rows written."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rows_per_day, days)
    lines = ["reading_id,day,station,value"]
    reading = 0
    for offset, count in enumerate(counts):
        day = START + dt.timedelta(days=offset)
        for _ in range(count):
            lines.append(f"{reading},{day},{'ABC'[reading % 3]},{rng.normal(10, 3):.3f}")
            reading += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return reading


def partition_root(dest: Path, days: int = 5000) -> tuple[Path, int]:
    """The factory root at `dest` and the rows of its source."""
    if dest.exists():
        shutil.rmtree(dest)
    line = dest / "lines" / LINE
    line.mkdir(parents=True)
    (dest / "factory.yaml").write_text(f"lines: [{LINE}]\n", encoding="utf-8")
    rows = write_readings(line / "readings.csv", days)
    end = START + dt.timedelta(days=days)
    (line / "line.yaml").write_text(
        textwrap.dedent(f"""\
        line:
          description: Sensor readings over {days} days, a few a day (a benchmark of partition bookkeeping).
          dbt:
            partitioned:
              select: tag:{LINE}_daily
              partitions: daily
              date_column: day
        """),
        encoding="utf-8",
    )
    (line / "time.yaml").write_text(
        f"partitions:\n  daily:\n    start: {START}\n    end: {end}\n    timezone: UTC\n", encoding="utf-8"
    )
    (line / "sources.yaml").write_text(
        textwrap.dedent("""\
        sources:
          readings:
            description: A few sensor readings a day.
            owner: team:bench
            file: readings.csv
            primary_key: [reading_id]
            partition: {partitions: daily, date_column: day}
            columns: {reading_id: int, day: date, station: string, value: float}
        """),
        encoding="utf-8",
    )
    project = dest / "dbt_project"
    models = project / "models" / LINE
    models.mkdir(parents=True)
    shutil.copytree(REPO / "dbt_project" / "macros", project / "macros")
    for name in ("dbt_project.yml", "profiles.yml"):  # the repository's project: its vars, macros, profile
        shutil.copy2(REPO / "dbt_project" / name, project / name)
    (models / "_sources.yml").write_text(
        textwrap.dedent("""\
        version: 2
        sources:
          - name: raw
            schema: raw
            tables: [{name: readings, description: The landed readings.}]
        models:
          - name: daily_readings
            description: Readings per station and day.
        """),
        encoding="utf-8",
    )
    (models / "daily_readings.sql").write_text(
        textwrap.dedent("""\
        {{ config(
            materialized='incremental',
            unique_key=['day', 'station'],
            incremental_strategy='delete+insert',
            pre_hook="{{ clear_partition_window('day') }}",
            tags=['many_days_daily'],
        ) }}
        select day, station, count(*) as readings, avg(value) as mean_value
        from {{ source('raw', 'readings') }}
        where {{ partition_window('day') }}
        group by day, station
        """),
        encoding="utf-8",
    )
    return dest, rows


def main() -> None:
    parser = argparse.ArgumentParser(description="A factory root with one line of many daily partitions.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--days", type=int, default=5000)
    args = parser.parse_args()
    root, rows = partition_root(args.out, args.days)
    print(f"factory root {root}: {rows:,} readings over {args.days:,} daily partitions")


if __name__ == "__main__":
    main()
