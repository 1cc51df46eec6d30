"""The Dagster instance the factory uses: `$DAGSTER_HOME`, else `<factory home>/dagster` (SQLite)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from factory_dagster.storage.home import FactoryHome

DEFAULT_INSTANCE_YAML = """\
# Written by the factory: an embedded SQLite instance under the factory home.
# The embedded DuckDB warehouse takes one writer at a time, so runs queue one by one.
# For production, point DAGSTER_HOME at a dagster.yaml with Postgres storage (see README).
run_queue:
  max_concurrent_runs: 1
telemetry:
  enabled: false
"""


# Dagster's opt-ins the factory takes (a value the user set wins; see the README, "Speed"):
# one ASSET_MATERIALIZATION_PLANNED event per asset for a partition range run, carrying the
# range, instead of one per partition (2,202 of a flights build's 4,636 events; 85% of a
# 4,750-day build's time). What it gives up, as Dagster's own storage code says: when such a
# run fails, its partitions are not marked failed (they show as missing, not as failed).
DAGSTER_OPT_INS = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}


def ensure_dagster_home(home: FactoryHome) -> Path:
    """Point `DAGSTER_HOME` at the factory's instance unless the user set one; create it; take
    Dagster's opt-ins (`DAGSTER_OPT_INS`) unless the user set them."""
    configured = os.environ.get("DAGSTER_HOME")
    path = Path(configured).expanduser().resolve() if configured else home.dagster_home
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DEFAULT_INSTANCE_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(path)
    for name, value in DAGSTER_OPT_INS.items():
        os.environ.setdefault(name, value)
    return path


def factory_instance(home: FactoryHome) -> dg.DagsterInstance:
    ensure_dagster_home(home)
    return dg.DagsterInstance.get()
