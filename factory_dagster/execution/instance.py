"""The Dagster instance the factory uses: `$DAGSTER_HOME`, else `<factory home>/dagster`.

Its `dagster.yaml` follows the deployment profile: embedded, a SQLite instance that runs one run
at a time; production, run, event log and schedule storage on PostgreSQL (credentials named by
environment variable, Dagster's `env:` config, never written out), queued runs several at a time
and one step at a time in each concurrency pool.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

from factory_dagster.storage.atomic import atomic_write_bytes
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import DeploymentProfile, PostgresSettings, active_profile, check_postgres

DEFAULT_INSTANCE_YAML = """\
# Written by the factory: an embedded SQLite instance under the factory home.
# The embedded DuckDB warehouse takes one writer at a time, so runs queue one by one.
# For production, set FACTORY_PROFILE=production (see README, Production).
run_queue:
  max_concurrent_runs: 1
telemetry:
  enabled: false
"""

# Dagster's SQLite event log, in its usual folder, writing a range run's materializations in bulk
# (factory_dagster.compat.BatchingSqliteEventLogStorage).
EMBEDDED_EVENT_LOG = """\
event_log_storage:
  module: factory_dagster.compat
  class: BatchingSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""

PRODUCTION_HEADER = """\
# Written by the factory for FACTORY_PROFILE=production (see README, Production): rewritten
# from the environment at each `factory` start. Secrets are named by variable, never written.
"""

# The slots of one concurrency pool (an asset or op with `pool=`): one writer at a time for a
# resource that must not be shared; `dagster instance concurrency set <pool> <n>` overrides it.
POOL_DEFAULT_LIMIT = 1


# Dagster's opt-ins the factory takes (a value the user set wins; see the README, "Speed"):
# one ASSET_MATERIALIZATION_PLANNED event per asset for a partition range run, carrying the
# range, instead of one per partition (2,202 of a flights build's 4,636 events; 85% of a
# 4,750-day build's time). What it gives up, as Dagster's own storage code says: when such a
# run fails, its partitions are not marked failed (they show as missing, not as failed).
# And a step output's materializations (one per partition of its window) handed to the event log
# together, in batches of this many: dagster-postgres and the embedded instance's SQLite log
# (compat.BatchingSqliteEventLogStorage) write each batch in one go instead of ≈8 ms an event.
# What it gives up: a window's partitions appear together when the batch is written, not one by
# one (the factory publishes a window at once anyway); the asset's latest-event row is the batch's last.
DAGSTER_OPT_INS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true", "DAGSTER_EVENT_BATCH_SIZE": "500"}


def postgres_db(settings: PostgresSettings) -> dict[str, Any]:
    """dagster-postgres' `postgres_db` block: each value set in the environment by `{env: VAR}`,
    the defaults literally; Dagster's tables go to the settings' schema (search_path)."""

    def value(name: str, literal: object) -> object:
        source = settings.sources.get(name)
        return {"env": source} if source else literal

    block: dict[str, Any] = {
        "hostname": value("HOST", settings.host),
        "port": value("PORT", settings.port),
        "username": value("USER", settings.user),
        "db_name": value("DBNAME", settings.dbname),
        "params": {"options": f"-c search_path={settings.schema}"},
        # SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3; dagster-postgres ships psycopg2.
        "scheme": "postgresql+psycopg2",
    }
    if "PASSWORD" in settings.sources:
        block["password"] = {"env": settings.sources["PASSWORD"]}
    return block


def instance_yaml(profile: DeploymentProfile, folder: Path) -> str:
    """The `dagster.yaml` of the profile's instance in `folder` (its DAGSTER_HOME)."""
    if profile.embedded or profile.instance is None:
        return DEFAULT_INSTANCE_YAML + EMBEDDED_EVENT_LOG.format(base_dir=json.dumps(f"{folder / 'history' / 'runs'}/"))
    storage = {"postgres_db": postgres_db(profile.instance)}
    config = {
        "storage": {"postgres": storage},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"},
        "concurrency": {
            "runs": {"max_concurrent_runs": profile.max_concurrent_runs},
            "pools": {"granularity": "op", "default_limit": POOL_DEFAULT_LIMIT},
        },
        "telemetry": {"enabled": False},
    }
    return PRODUCTION_HEADER + yaml.safe_dump(config, sort_keys=False)


def ensure_schema(settings: PostgresSettings) -> None:
    """Create the instance's schema (Dagster creates its tables, not their schema)."""
    # Two processes starting at once (workers) would race on `create schema if not exists`, which
    # PostgreSQL does not make atomic: the transaction-scoped advisory lock lets one create it.
    check_postgres(
        settings,
        "Dagster instance database",
        f"select pg_advisory_xact_lock(hashtext('factory.schema')); create schema if not exists \"{settings.schema}\"",
    )


def ensure_dagster_home(home: FactoryHome, profile: DeploymentProfile | None = None) -> Path:
    """Point `DAGSTER_HOME` at the factory's instance unless the user set one; write its
    `dagster.yaml` for the active profile (a user's DAGSTER_HOME keeps its own, if it has one);
    take Dagster's opt-ins (`DAGSTER_OPT_INS`) unless the user set them."""
    profile = profile or active_profile()
    configured = os.environ.get("DAGSTER_HOME")
    path = Path(configured).expanduser().resolve() if configured else home.dagster_home
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    wanted = instance_yaml(profile, path)
    current = config.read_text(encoding="utf-8") if config.exists() else None
    # In the user's own DAGSTER_HOME, their dagster.yaml stays, but for an embedded one the factory
    # wrote: it follows the folder (a copied home names its own event log) and the factory's version.
    embedded = (
        current is not None and current.startswith(DEFAULT_INSTANCE_YAML) and wanted.startswith(DEFAULT_INSTANCE_YAML)
    )
    if current != wanted and (current is None or not configured or embedded):
        atomic_write_bytes(config, wanted.encode())
    if profile.instance is not None:
        ensure_schema(profile.instance)
    os.environ["DAGSTER_HOME"] = str(path)
    for name, value in DAGSTER_OPT_INS.items():
        os.environ.setdefault(name, value)
    return path


def factory_instance(home: FactoryHome) -> dg.DagsterInstance:
    ensure_dagster_home(home)
    return dg.DagsterInstance.get()
