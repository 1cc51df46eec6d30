"""The deployment profile: chosen by FACTORY_PROFILE, connections from the environment, no secret shown."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from factory_dagster.execution.distributed import celery_config, factory_executor
from factory_dagster.execution.instance import instance_yaml
from factory_dagster.storage.profile import ProfileError, active_profile, redact_url

PRODUCTION = {
    "FACTORY_PROFILE": "production",
    "FACTORY_PG_USER": "factory",
    "FACTORY_PG_PASSWORD": "s3cret",
    "FACTORY_PG_DBNAME": "warehouse",
    "FACTORY_PG_SCHEMA": "analytics",
}


def test_embedded_is_the_default_and_needs_nothing():
    profile = active_profile({})
    assert profile.embedded
    assert (profile.warehouse, profile.instance, profile.broker) == (None, None, None)
    assert profile.describe() == "profile embedded: DuckDB warehouse, SQLite Dagster instance, steps in process"


def test_production_reads_the_environment_and_never_shows_the_password():
    env = {**PRODUCTION, "FACTORY_CELERY_BROKER": "amqp://guest:guest@127.0.0.1:5672//"}
    profile = active_profile(env)
    assert profile.warehouse is not None and profile.instance is not None
    assert profile.warehouse.uri() == "postgresql://factory:s3cret@127.0.0.1:5432/warehouse"
    assert (profile.instance.dbname, profile.instance.schema) == ("warehouse", "dagster")
    assert profile.describe() == (
        "profile production: warehouse postgresql://factory@127.0.0.1:5432/warehouse (schema analytics), "
        "Dagster instance postgresql://factory@127.0.0.1:5432/warehouse (schema dagster), "
        "Celery broker amqp://guest:***@127.0.0.1:5672//, up to 4 concurrent runs"
    )
    assert "s3cret" not in profile.describe()


def test_instance_variables_override_the_warehouse_ones():
    profile = active_profile({**PRODUCTION, "FACTORY_DAGSTER_PG_DBNAME": "dagster", "FACTORY_DAGSTER_PG_HOST": "db2"})
    assert profile.instance is not None
    assert (profile.instance.host, profile.instance.dbname, profile.instance.user) == ("db2", "dagster", "factory")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FACTORY_PROFILE": "prod"}, "FACTORY_PROFILE: unknown profile 'prod'; expected one of embedded, production"),
        (
            {k: v for k, v in PRODUCTION.items() if k != "FACTORY_PG_USER"},
            "FACTORY_PROFILE=production needs FACTORY_PG_USER (see README, Production)",
        ),
        ({**PRODUCTION, "FACTORY_PG_PORT": "54x"}, "FACTORY_PG_PORT: not a port number: '54x'"),
        (
            {**PRODUCTION, "FACTORY_MAX_CONCURRENT_RUNS": "0"},
            "FACTORY_MAX_CONCURRENT_RUNS: not a positive number of runs: '0'",
        ),
    ],
)
def test_a_profile_that_cannot_be_used_says_which_variable(env, message):
    with pytest.raises(ProfileError) as error:
        active_profile(env)
    assert str(error.value) == message


def test_redact_url_keeps_urls_without_a_password():
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"


def test_the_production_instance_names_its_secrets_by_variable():
    """dagster.yaml on PostgreSQL: the values set in the environment by `env:`, the password never
    written; queued runs as many as configured; pools one step at a time."""
    env = {**PRODUCTION, "FACTORY_DAGSTER_PG_PASSWORD": "dagst3r", "FACTORY_MAX_CONCURRENT_RUNS": "3"}
    text = instance_yaml(active_profile(env), Path("/srv/dagster"))
    assert "s3cret" not in text and "dagst3r" not in text
    config = yaml.safe_load(text)
    assert config["storage"]["postgres"]["postgres_db"] == {
        "hostname": "127.0.0.1",
        "port": 5432,
        "username": {"env": "FACTORY_PG_USER"},
        "db_name": {"env": "FACTORY_PG_DBNAME"},
        "params": {"options": "-c search_path=dagster"},
        "scheme": "postgresql+psycopg2",
        "password": {"env": "FACTORY_DAGSTER_PG_PASSWORD"},
    }
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"] == {
        "runs": {"max_concurrent_runs": 3},
        "pools": {"granularity": "op", "default_limit": 1},
    }


def test_embedded_keeps_its_sqlite_instance_one_run_at_a_time(tmp_path: Path):
    config = yaml.safe_load(instance_yaml(active_profile({}), tmp_path / "dagster"))
    assert config["run_queue"] == {"max_concurrent_runs": 1}
    assert config["event_log_storage"] == {
        "module": "factory_dagster.compat",
        "class": "BatchingSqliteEventLogStorage",
        "config": {"base_dir": f"{tmp_path}/dagster/history/runs/"},  # where Dagster's own SQLite log keeps it
    }


def test_a_copied_home_writes_its_own_event_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The embedded dagster.yaml names its folder; a copy of the home, used in place of the
    original (DAGSTER_HOME set to it, as a user would), is rewritten to name the copy's."""
    import shutil

    from factory_dagster.execution.instance import ensure_dagster_home
    from factory_dagster.storage.home import FactoryHome

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    ensure_dagster_home(FactoryHome(tmp_path / "home"), active_profile({}))
    shutil.copytree(tmp_path / "home", tmp_path / "copy")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "copy" / "dagster"))
    ensure_dagster_home(FactoryHome(tmp_path / "copy"), active_profile({}))
    written = yaml.safe_load((tmp_path / "copy" / "dagster" / "dagster.yaml").read_text())
    assert written["event_log_storage"]["config"]["base_dir"] == f"{tmp_path}/copy/dagster/history/runs/"
    own = "telemetry:\n  enabled: false\n"  # a user's own dagster.yaml stays as it is
    (tmp_path / "copy" / "dagster" / "dagster.yaml").write_text(own)
    ensure_dagster_home(FactoryHome(tmp_path / "copy"), active_profile({}))
    assert (tmp_path / "copy" / "dagster" / "dagster.yaml").read_text() == own


def test_embedded_runs_steps_in_process_production_on_celery(monkeypatch):
    import dagster as dg

    assert factory_executor(active_profile({})) is dg.in_process_executor
    monkeypatch.setenv("FACTORY_CELERY_BROKER", "redis://:pw@127.0.0.1:6379/3")
    production = active_profile({**PRODUCTION, "FACTORY_CELERY_BROKER": "redis://:pw@127.0.0.1:6379/3"})
    assert celery_config(production) == {"broker": {"env": "FACTORY_CELERY_BROKER"}, "backend": "rpc://"}
    assert factory_executor(production).name == "factory_celery"
