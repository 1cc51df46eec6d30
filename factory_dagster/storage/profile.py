"""The deployment profile: where the warehouse, the Dagster instance and the step workers are.

`embedded` (the default) needs no service: the DuckDB warehouse and the SQLite Dagster instance
under the factory home, steps in one process. `production` puts the warehouse and the Dagster
instance on PostgreSQL and runs steps on Celery workers through a broker. The profile is chosen by
`FACTORY_PROFILE`, never by editing code; every connection detail comes from the environment, and
`describe()` never shows a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote as url_quote
from urllib.parse import urlsplit, urlunsplit

PROFILE_ENV = "FACTORY_PROFILE"
PROFILES = ("embedded", "production")
WAREHOUSE_PREFIX = "FACTORY_PG_"
INSTANCE_PREFIX = "FACTORY_DAGSTER_PG_"
BROKER_ENV = "FACTORY_CELERY_BROKER"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
MAX_RUNS_ENV = "FACTORY_MAX_CONCURRENT_RUNS"
DEFAULT_MAX_RUNS = 4

ProfileName = Literal["embedded", "production"]


class ProfileError(ValueError):
    """A profile that cannot be used as configured; the message is one line naming the variable."""


@dataclass(frozen=True)
class PostgresSettings:
    """A PostgreSQL connection read from `<prefix>HOST`, `PORT`, `USER`, `PASSWORD`, `DBNAME`, `SCHEMA`."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    schema: str
    prefix: str
    # Which environment variable each value came from (`HOST` → `FACTORY_PG_HOST`); a value
    # absent here is a default. Lets a config file name the variable instead of its value.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_env(
        cls,
        prefix: str,
        environ: Mapping[str, str],
        fallback: PostgresSettings | None = None,
        default_schema: str = "public",
    ) -> PostgresSettings:
        """Each value from `<prefix>NAME`, else `fallback`'s (but the schema); host and port default
        to a local server, user and database are required, an empty password means trust or `.pgpass`."""

        sources: dict[str, str] = {}

        def value(name: str, default: str | None = None) -> str:
            found = environ.get(prefix + name)
            if found is not None:
                sources[name] = prefix + name
                return found
            if fallback is not None and name != "SCHEMA":
                if name in fallback.sources:
                    sources[name] = fallback.sources[name]
                return str(getattr(fallback, name.lower()))
            if default is not None:
                return default
            raise ProfileError(f"{PROFILE_ENV}=production needs {prefix}{name} (see README, Production)")

        port = value("PORT", "5432")
        if not port.isdigit():
            raise ProfileError(f"{prefix}PORT: not a port number: {port!r}")
        return cls(
            host=value("HOST", "127.0.0.1"),
            port=int(port),
            user=value("USER"),
            password=value("PASSWORD", ""),
            dbname=value("DBNAME"),
            schema=value("SCHEMA", default_schema),
            prefix=prefix,
            sources=sources,
        )

    def uri(self) -> str:
        """A libpq URI, with the password: for connections, never for display."""
        credentials = url_quote(self.user, safe="")
        if self.password:
            credentials += ":" + url_quote(self.password, safe="")
        return f"postgresql://{credentials}@{self.host}:{self.port}/{url_quote(self.dbname, safe='')}"

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname} (schema {self.schema})"


def check_postgres(settings: PostgresSettings, role: str, statement: str | None = None) -> None:
    """Connect to `settings` (and run `statement`); a server that cannot be reached is a one-line
    `ProfileError` naming `role`, the server and the variables to fix."""
    import psycopg2  # lazy: only the production profile talks to PostgreSQL

    try:
        with psycopg2.connect(settings.uri(), connect_timeout=5) as connection, connection.cursor() as cursor:
            if statement:
                cursor.execute(statement)
        connection.close()
    except psycopg2.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        variables = f"{settings.prefix}*" + (f" / {WAREHOUSE_PREFIX}*" if settings.prefix != WAREHOUSE_PREFIX else "")
        raise ProfileError(
            f"{role} {settings.describe()} unreachable: {reason}; start PostgreSQL (make services) or fix {variables}"
        ) from None


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (broker URLs carry credentials)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass(frozen=True)
class DeploymentProfile:
    """What a factory process runs against. `warehouse`, `instance` and `broker` are None when embedded."""

    name: ProfileName
    warehouse: PostgresSettings | None = None
    instance: PostgresSettings | None = None
    broker: str | None = None
    max_concurrent_runs: int = 1

    @property
    def embedded(self) -> bool:
        return self.name == "embedded"

    def describe(self) -> str:
        """One line for the CLI: the profile and what it runs against, without secrets."""
        if self.embedded or self.warehouse is None or self.instance is None or self.broker is None:
            return "profile embedded: DuckDB warehouse, SQLite Dagster instance, steps in process"
        return (
            f"profile production: warehouse {self.warehouse.describe()}, "
            f"Dagster instance {self.instance.describe()}, Celery broker {redact_url(self.broker)}, "
            f"up to {self.max_concurrent_runs} concurrent runs"
        )


def active_profile(environ: Mapping[str, str] | None = None) -> DeploymentProfile:
    """The profile `FACTORY_PROFILE` names (default `embedded`), its connections from the environment.

    The Dagster instance's variables (`FACTORY_DAGSTER_PG_*`) default to the warehouse's, so one
    database serves both unless told otherwise, Dagster's tables in their own schema (`dagster`).
    """
    env = os.environ if environ is None else environ
    name = env.get(PROFILE_ENV, "embedded").strip() or "embedded"
    if name == "embedded":
        return DeploymentProfile("embedded")
    if name != "production":
        raise ProfileError(f"{PROFILE_ENV}: unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    warehouse = PostgresSettings.from_env(WAREHOUSE_PREFIX, env)
    instance = PostgresSettings.from_env(INSTANCE_PREFIX, env, fallback=warehouse, default_schema="dagster")
    runs = env.get(MAX_RUNS_ENV, str(DEFAULT_MAX_RUNS)).strip()
    if not runs.isdigit() or int(runs) < 1:
        raise ProfileError(f"{MAX_RUNS_ENV}: not a positive number of runs: {runs!r}")
    return DeploymentProfile(
        "production",
        warehouse=warehouse,
        instance=instance,
        broker=env.get(BROKER_ENV) or DEFAULT_BROKER,
        max_concurrent_runs=int(runs),
    )
