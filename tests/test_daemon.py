"""The real daemon: a landed file triggers the sensor's run, a schedule tick triggers a run.

`dagster-daemon run` starts on a temporary DAGSTER_HOME in its own process group; the test waits
(bounded) for the runs it launches, checks the partition's rows, then stops every process it
started and checks that none is left.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from factory_dagster.cli import main
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.storage.home import FactoryHome
from tests.conftest import REPO, Build, copy_line, line_args
from tests.processes import background
from tests.test_time import copy_home, source_days

pytestmark = pytest.mark.e2e

DAY = "2013-06-10"
RUN_TIMEOUT = 300


def wait_for_run(instance: dg.DagsterInstance, tags: dict[str, str], log: Path) -> dg.DagsterRun:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags=tags))
        finished = [r for r in runs if r.is_finished]
        if finished:
            run = finished[0]
            assert run.status == dg.DagsterRunStatus.SUCCESS, (
                f"run {run.run_id} for {tags} ended {run.status}; daemon log:\n{log.read_text()[-3000:]}"
            )
            return run
        time.sleep(2)
    raise AssertionError(f"no finished run with {tags} within {RUN_TIMEOUT} s; daemon log:\n{log.read_text()[-3000:]}")


@pytest.fixture
def daemon_setup(flights_build: Build, tmp_path: Path) -> dict[str, Path]:
    home = copy_home(flights_build, tmp_path)
    spec_dir = copy_line(tmp_path / "factory")
    time_yaml = spec_dir / "time.yaml"
    text = time_yaml.read_text().replace("minimum_interval_seconds: 15", "minimum_interval_seconds: 5")
    text = re.sub(r'cron: "0 6 \* \* \*"', 'cron: "* * * * *"', text)  # the daily schedule ticks every minute
    time_yaml.write_text(text)
    line = spec_dir / "line.yaml"  # automation follows upstream in its own runs: keep this test to two
    line.write_text(line.read_text().replace("  automation:\n    enabled: true", "  automation:\n    enabled: false"))
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: factory_dagster.definitions\n"
        f"      attribute: defs\n      working_directory: {REPO}\n"
    )
    return {"home": home, "specs": spec_dir, "workspace": workspace, "dagster_home": tmp_path / "dagster_home"}


def test_daemon_runs_the_sensor_and_the_schedule(daemon_setup: dict[str, Path], tmp_path: Path) -> None:
    home, dagster_home = daemon_setup["home"], daemon_setup["dagster_home"]
    spec_dir = daemon_setup["specs"]
    env = {
        **os.environ,
        "FACTORY_HOME": str(home),
        "FACTORY_ROOT": str(spec_dir.parent.parent),
        "FACTORY_LINES": spec_dir.name,
        "DAGSTER_HOME": str(dagster_home),
    }
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    ensure_dagster_home(FactoryHome(home))  # the factory's instance config: runs queue one at a time
    assert "max_concurrent_runs: 1" in (dagster_home / "dagster.yaml").read_text()
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    con.execute("delete from raw.flights where make_date(year, month, day) = ?", [dt.date.fromisoformat(DAY)])
    con.close()

    # Upstream drops the day's file; nobody clicks anything.
    assert main(["replay", "--start", DAY, "--end", DAY, "--home", str(home), *line_args(spec_dir)]) == 0
    log = tmp_path / "daemon.log"
    daemon = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(daemon_setup["workspace"])]
    with background(daemon, env, REPO, log):
        sensor_run = wait_for_run(instance, {"factory/sensor": "flights_landing"}, log)
        scheduled = wait_for_run(instance, {"factory/schedule": "flights_daily"}, log)

    assert sensor_run.tags["dagster/partition"] == DAY
    assert sensor_run.tags["factory/landing_file"].endswith(f"landing/flights/{DAY}.csv")
    assert scheduled.tags["dagster/partition"] == DAY  # the latest day that landed
    expected = source_days()[dt.date.fromisoformat(DAY)]
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        raw = con.execute(
            "select count(*) from raw.flights where make_date(year, month, day) = ?", [dt.date.fromisoformat(DAY)]
        ).fetchone()[0]
        fct = con.execute(
            "select count(*) from fct_flights where flight_date = ?", [dt.date.fromisoformat(DAY)]
        ).fetchone()[0]
    finally:
        con.close()
    assert raw == fct == expected
    materialized = instance.get_latest_materialization_event(dg.AssetKey("delay_predictions"))
    assert materialized is not None and materialized.asset_materialization.partition == DAY
