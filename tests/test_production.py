"""The production profile against the machine's real services: PostgreSQL holds the Dagster
instance, Redis brokers the steps to `factory worker` processes.

Each test has its own PostgreSQL database and a Redis database no other running test uses,
dropped and flushed after it; every worker a test starts is stopped (and checked gone) by
`tests.processes.background`.
The line is a copy of seattle_weather with a second raw source (the same file), so a run has two
independent steps that two workers can execute at once. The warehouse is the production
profile's: PostgreSQL, in the same database (schema `public`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from benchmarks.production import admin
from tests.conftest import REPO, copy_line
from tests.processes import background, celery_workers, processes_with, redis_broker, wait_ready, wait_until

SOURCE_ROWS = 1461  # vega_datasets' seattle-weather.csv: 2012-01-01 .. 2015-12-31, one row a day
RAW_TABLES = ["seattle_observations", "seattle_observations_again"]
RAW_KEYS = [f"raw/{table}" for table in RAW_TABLES]
FACTORY = str(Path(sys.executable).with_name("factory"))


@dataclass
class Production:
    env: dict[str, str]
    database: str
    broker: str
    home: Path
    root: Path
    tmp: Path

    def instance(self) -> dg.DagsterInstance:
        from factory_dagster.execution.instance import factory_instance
        from factory_dagster.storage.home import FactoryHome

        return factory_instance(FactoryHome(self.home))


@pytest.fixture
def production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Production]:
    """The production profile on a fresh database and a Redis database of its own, serving the
    test line."""
    database = f"factory_prod_{uuid.uuid4().hex[:12]}"
    spec_dir = copy_line(tmp_path / "factory", "seattle_weather")
    sources = spec_dir / "sources.yaml"
    text = sources.read_text()
    second = text[text.index("  seattle_observations:") :].replace(
        "seattle_observations:", "seattle_observations_again:", 1
    )
    sources.write_text(text + second)
    with redis_broker() as broker:
        env = {
            "FACTORY_PROFILE": "production",
            "FACTORY_PG_USER": "postgres",
            "FACTORY_PG_DBNAME": database,
            "FACTORY_CELERY_BROKER": broker,
            "FACTORY_HOME": str(tmp_path / "home"),
            "FACTORY_ROOT": str(tmp_path / "factory"),
            "FACTORY_LINES": "seattle_weather",
        }
        admin(f'create database "{database}"')
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        try:
            yield Production(env, database, broker, tmp_path / "home", tmp_path / "factory", tmp_path)
        finally:
            admin(f'drop database if exists "{database}" with (force)')


def worker_env(production: Production) -> dict[str, str]:
    return {**os.environ, **production.env, "PYTHONPATH": str(REPO)}


def run_raw_steps(production: Production, instance: dg.DagsterInstance):
    """The two raw landings, one run, through the production runner (the CLI's path)."""
    from factory_dagster.definitions import reconstructable_job
    from factory_dagster.execution.runner import execute
    from factory_dagster.factory import build_definitions

    defs = build_definitions("seattle_weather", root=production.root, home=production.home)
    keys = [dg.AssetKey.from_user_string(key) for key in RAW_KEYS]
    job = reconstructable_job(str(production.root), ["seattle_weather"], str(production.home), RAW_KEYS)
    return execute(defs, instance, keys, job=job)


def step_intervals(instance: dg.DagsterInstance, run_id: str) -> dict[str, tuple[float, float]]:
    starts, ends = {}, {}
    for record in instance.get_records_for_run(run_id, limit=10_000).records:
        event = record.event_log_entry.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.event_log_entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = record.event_log_entry.timestamp
    return {step: (starts[step], ends[step]) for step in starts if step in ends}


def raw_rows(production: Production, table: str) -> int | None:
    """Rows of a raw table in the active warehouse, None when it does not exist."""
    from factory_dagster.storage.home import FactoryHome
    from factory_dagster.storage.warehouse import active_warehouse

    warehouse = active_warehouse(FactoryHome(production.home))
    if not warehouse.table_exists("raw", table):
        return None
    return int(warehouse.read_arrow(f"select count(*) as n from raw.{table}").column("n")[0].as_py())


def test_factory_profile_says_what_it_runs_against_and_keeps_the_password_out_of_files(
    production: Production, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from factory_dagster.cli import main

    monkeypatch.setenv("FACTORY_PG_PASSWORD", "s3cret-pw")  # trust authentication ignores it
    assert main(["profile"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        f"profile production: warehouse postgresql://postgres@127.0.0.1:5432/{production.database} (schema "
        f"public), Dagster instance postgresql://postgres@127.0.0.1:5432/{production.database} (schema dagster), "
        f"Celery broker {production.broker}, up to 4 concurrent runs"
    )
    written = (production.home / "dagster" / "dagster.yaml").read_text()
    assert "s3cret-pw" not in out + written and "env: FACTORY_PG_PASSWORD" in written
    # Dagster reads it: the instance is on PostgreSQL, in its own schema.
    instance = production.instance()
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=production.database)
    with connection.cursor() as cursor:
        cursor.execute("select count(*) from information_schema.tables where table_schema = 'dagster'")
        row = cursor.fetchone()
        assert row is not None and row[0] > 0
    connection.close()
    instance.dispose()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "FACTORY_CELERY_BROKER",
            "redis://127.0.0.1:1/0",
            "error: Celery broker redis://127.0.0.1:1/0 unreachable: Error 111 connecting to 127.0.0.1:1. "
            "Connection refused; start it (make services) or set FACTORY_CELERY_BROKER",
        ),
        (
            "FACTORY_PG_PORT",
            "1",
            "error: Dagster instance database postgresql://postgres@127.0.0.1:1/{database} (schema dagster) "
            'unreachable: connection to server at "127.0.0.1", port 1 failed: Connection refused; '
            "start PostgreSQL (make services) or fix FACTORY_DAGSTER_PG_* / FACTORY_PG_*",
        ),
    ],
)
def test_a_worker_that_cannot_reach_a_service_fails_at_start_in_one_line(
    production: Production, variable: str, value: str, message: str
) -> None:
    env = {**worker_env(production), variable: value}
    done = subprocess.run([FACTORY, "worker"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 2
    assert done.stderr.strip() == message.format(database=production.database)
    assert "Traceback" not in done.stdout + done.stderr


def test_a_production_build_with_no_worker_is_refused_in_one_line_before_it_starts(
    production: Production, capsys: pytest.CaptureFixture[str]
) -> None:
    """No worker listens on the broker: the build would wait in the queue forever; it is refused
    before any run is stored."""
    from factory_dagster.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["build"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines()[-1] == (
        f"error: no Celery worker answers on {production.broker} within 5 s: "
        "start one with `factory worker` (README, Production), then run again"
    )
    assert production.instance().get_runs_count() == 0


@pytest.mark.e2e
def test_two_workers_run_one_runs_steps_in_parallel_on_the_postgres_instance(production: Production) -> None:
    with celery_workers(2, worker_env(production), REPO, production.tmp) as logs:
        instance = production.instance()
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        report = run_raw_steps(production, instance)
        assert report.success, report.failures

    # The run is recorded in PostgreSQL: read back through a fresh connection to the database.
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=production.database)
    with connection.cursor() as cursor:
        cursor.execute("select status from dagster.runs where run_id = %s", [report.run_id])
        assert cursor.fetchone() == ("SUCCESS",)
    connection.close()
    # Both steps ran at once, each on its own worker.
    intervals = step_intervals(instance, report.run_id)
    (first_start, first_end), (second_start, second_end) = (intervals[f"raw__{key}"] for key in RAW_TABLES)
    assert first_start < second_end and second_start < first_end, "the two steps did not overlap"
    served = {log.name: log.read_text().count("Task execute_plan[") for log in logs}
    assert all(count >= 1 for count in served.values()), served
    assert (
        raw_rows(production, "seattle_observations")
        == raw_rows(production, "seattle_observations_again")
        == (SOURCE_ROWS)
    )


def children_of(pids: list[int]) -> list[int]:
    """The pool processes of the workers `pids` belong to (a worker's main process forks them)."""
    found = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        parent = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        if parent in pids:
            found.append(pid)
    return found


def during_first_step(production: Production, instance: dg.DagsterInstance, action: Callable[[], None]):
    """Run the raw steps; once a step has started, `action()`; return the run's report and that step."""
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["report"] = run_raw_steps(production, instance)
        except BaseException:  # what the run raised, for the assertion below
            outcome["error"] = traceback.format_exc()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    step = None
    while step is None and time.monotonic() < deadline:
        started = instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.STEP_START), limit=1)
        if started and (event := started[0].event_log_entry.dagster_event) is not None:
            step = event.step_key
            action()
        time.sleep(0.2)
    thread.join(timeout=300)
    assert "error" not in outcome, f"the run raised:\n{outcome['error']}"
    assert step is not None and "report" in outcome, "the run never started a step, or never ended"
    return outcome["report"], step


def run_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    event = records[0].event_log_entry.dagster_event
    assert event is not None and event.event_specific_data is not None
    return event.event_specific_data.error.to_string()  # type: ignore[union-attr]


def assert_old_or_new(production: Production) -> None:
    for table in RAW_TABLES:
        assert raw_rows(production, table) in (None, SOURCE_ROWS)  # old (none yet) or new, never half


@pytest.mark.e2e
def test_a_worker_killed_mid_step_fails_the_run_naming_the_step_and_reexecution_completes(
    production: Production,
) -> None:
    from factory_dagster.definitions import reconstructable_job

    log = production.tmp / "worker.log"
    with background([FACTORY, "worker", "--name", "victim"], worker_env(production), REPO, log) as worker:
        wait_ready([log])
        instance = production.instance()
        marker = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"FACTORY_TEST_MARKER=")[1].split(b"\0")[0]

        def kill_step_process() -> None:
            for pid in children_of(processes_with(marker.decode())):
                os.kill(pid, signal.SIGKILL)

        report, step = during_first_step(production, instance, kill_step_process)
        assert not report.success
        message = run_failure(instance, report.run_id)
        assert f"[{step}]" in message and "WorkerLostError" in message
        assert report.failures[step].startswith(
            "billiard.exceptions.WorkerLostError: Worker exited prematurely: signal 9"
        )
        assert_old_or_new(production)

        job = reconstructable_job(str(production.root), ["seattle_weather"], str(production.home), RAW_KEYS)
        again = dg.execute_job(
            job, instance, reexecution_options=dg.ReexecutionOptions.from_failure(report.run_id, instance)
        )
        assert again.success
    assert all(raw_rows(production, table) == SOURCE_ROWS for table in RAW_TABLES)


@pytest.mark.e2e
def test_postgres_connections_dropped_mid_run_leave_nothing_torn_and_the_next_run_succeeds(
    production: Production,
) -> None:
    """Every connection to the instance's database is terminated while a step runs: the run ends
    (failed with the connection's error, or done after Dagster's reconnect), no table is half
    written, and the next run completes."""
    log = production.tmp / "worker.log"

    dropped: list[int] = []

    def drop_connections() -> None:
        """For 8 s, terminate every backend on the database but this one (Dagster's storage opens
        a connection per operation, so one sweep may find none)."""
        connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
        connection.autocommit = True
        deadline = time.monotonic() + 8
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:
                cursor.execute(
                    "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity "
                    "where datname = %s and pid <> pg_backend_pid()",
                    [production.database],
                )
                row = cursor.fetchone()
                dropped.append(int(row[0]) if row else 0)
                time.sleep(0.05)
        connection.close()

    with background([FACTORY, "worker", "--name", "pg"], worker_env(production), REPO, log):
        wait_ready([log])
        instance = production.instance()
        report, _ = during_first_step(production, instance, drop_connections)
        assert sum(dropped) > 0, "no connection was open to drop"
        run = instance.get_run_by_id(report.run_id)
        assert run is not None and run.is_finished
        if not report.success:  # the failure says what broke, in one line
            assert report.failures, "a failed run without a reason"
            assert any("connection" in reason for reason in report.failures.values()), report.failures
        assert_old_or_new(production)
        following = run_raw_steps(production, instance)
        assert following.success, following.failures
    assert all(raw_rows(production, table) == SOURCE_ROWS for table in RAW_TABLES)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own for guest, deleted afterwards: its broker URL."""
    vhost = f"factory_test_{uuid.uuid4().hex[:12]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    try:
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
        yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=True)


@pytest.mark.e2e
def test_rabbitmq_brokers_a_run_as_redis_does(production: Production, monkeypatch: pytest.MonkeyPatch) -> None:
    log = production.tmp / "worker.log"
    with rabbitmq_vhost() as broker:
        production.env["FACTORY_CELERY_BROKER"] = broker
        monkeypatch.setenv("FACTORY_CELERY_BROKER", broker)
        with background([FACTORY, "worker", "--name", "rabbit"], worker_env(production), REPO, log):
            wait_ready([log])
            report = run_raw_steps(production, production.instance())
        assert report.success, report.failures
    assert "amqp://guest:**@127.0.0.1:5672/factory_test_" in log.read_text()
    assert all(raw_rows(production, table) == SOURCE_ROWS for table in RAW_TABLES)


def test_the_dbt_steps_and_model_training_are_pooled_and_nothing_else() -> None:
    """What must not run twice at once across runs (README, Production: pools): each line's dbt
    invocations and each model's training, one pool for a slot's members (they compete for one
    champion); every other step runs as workers allow."""
    from factory_dagster.factory import build_definitions

    defs = build_definitions(["flights", "seattle_weather"], root=REPO, home=REPO / ".factory")
    pools = {a.op.name: a.op.pool for a in defs.resolve_asset_graph().assets_defs if a.is_executable}
    assert {step: pool for step, pool in pools.items() if pool} == {
        "flights_dbt_models": "flights/dbt",
        "flights_dbt_daily_models": "flights/dbt",
        "delay_classifier": "flights/slot/delay_risk",
        "delay_logit": "flights/slot/delay_risk",
        "seattle_weather_dbt_models": "seattle_weather/dbt",
        "seattle_high_temp": "seattle_weather/model/seattle_high_temp",
    }
    assert pools["raw__flights"] is None and pools["delay_predictions"] is None


def dbt_builds(marker: str) -> list[int]:
    """The `dbt build` processes a worker (found by its test marker) runs."""
    found = []
    for pid in processes_with(marker):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"/dbt") for part in command) and b"build" in command:
            found.append(pid)
    return found


def factory_build(production: Production, selection: str) -> subprocess.Popen:
    return subprocess.Popen(
        [FACTORY, "build", "--select", selection, "--no-prepare"],
        env=worker_env(production),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


DBT_STEP = "seattle_weather_dbt_models"
DBT_POOL = "seattle_weather/dbt"
DBT_MODELS = "key:stg_seattle_observations or key:fct_seattle_days"  # the step's models


@pytest.mark.e2e
def test_two_runs_at_once_take_turns_in_the_dbt_pool_while_their_other_steps_run(production: Production) -> None:
    """Two runs at once on one worker with two step processes: the first's dbt step is held (its
    dbt process stopped) while the second starts; the second's dbt step waits for the line's
    pool (one slot) and starts only after the first's ends, while its raw landing runs beside it."""
    log = production.tmp / "worker.log"
    with background([FACTORY, "worker", "--concurrency", "2"], worker_env(production), REPO, log) as worker:
        wait_ready([log])
        marker = Path(f"/proc/{worker.pid}/environ").read_bytes().split(b"FACTORY_TEST_MARKER=")[1].split(b"\0")[0]
        instance = production.instance()
        first = factory_build(production, f'key:"{RAW_KEYS[0]}" or {DBT_MODELS}')
        held = wait_until(lambda: dbt_builds(marker.decode()), "the first run's dbt never started")
        assert isinstance(held, list)
        for pid in held:
            os.kill(pid, signal.SIGSTOP)
        try:
            second = factory_build(production, f'key:"{RAW_KEYS[1]}" or {DBT_MODELS}')

            def second_run() -> dg.DagsterRun | None:
                runs = instance.get_runs(limit=2)
                return next((r for r in runs if r.asset_selection and RAW_KEYS[1] in _users(r)), None)

            run = wait_until(second_run, "the second run never started")
            assert isinstance(run, dg.DagsterRun)
            first_run = next(r.run_id for r in instance.get_runs(limit=2) if r.run_id != run.run_id)

            def waiting_and_landed() -> bool:
                """The second run's landing is done while its dbt step waits for the slot the first holds."""
                pool = instance.event_log_storage.get_concurrency_info(DBT_POOL)
                landed = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_SUCCESS).records
                return (
                    [(s.run_id, s.step_key) for s in pool.claimed_slots] == [(first_run, DBT_STEP)]
                    and (run.run_id, DBT_STEP) in [(s.run_id, s.step_key) for s in pool.pending_steps]
                    and "raw__seattle_observations_again" in [r.event_log_entry.step_key for r in landed]
                )

            wait_until(waiting_and_landed, "the second run's landing never ran while its dbt step waited")
        finally:
            for pid in held:
                os.kill(pid, signal.SIGCONT)
        for build in (first, second):
            output = build.communicate(timeout=300)[0]
            assert build.returncode == 0, output[-3000:]
    runs = {("second" if RAW_KEYS[1] in _users(r) else "first"): r.run_id for r in instance.get_runs(limit=2)}
    first_steps, second_steps = (step_intervals(instance, runs[n]) for n in ("first", "second"))
    assert first_steps[DBT_STEP][1] <= second_steps[DBT_STEP][0]  # the pool's one slot: one after the other
    # The second run's landing is in no pool: it ran, start to end, while the first's dbt step held it.
    landing = second_steps["raw__seattle_observations_again"]
    assert first_steps[DBT_STEP][0] < landing[0] and landing[1] < first_steps[DBT_STEP][1]
    assert raw_rows(production, "seattle_observations_again") == SOURCE_ROWS
    from factory_dagster.storage.home import FactoryHome
    from factory_dagster.storage.warehouse import active_warehouse

    days = active_warehouse(FactoryHome(production.home)).read_arrow("select count(*) as n from fct_seattle_days")
    assert days.column("n")[0].as_py() == SOURCE_ROWS


def _users(run: dg.DagsterRun) -> set[str]:
    return {key.to_user_string() for key in run.asset_selection or ()}
