"""`factory worker`'s machinery: check what a Celery worker needs, then run one.

A worker executes the steps the production profile's runs send through the broker: it needs the
broker, the Dagster instance's database (each step writes its events there) and the warehouse.
Each is checked before the worker starts, so a worker that could never run a step fails at once
with one line naming what is unreachable and how to fix it, instead of retrying in a log.
"""

from __future__ import annotations

from factory_dagster.compat import celery_worker_app
from factory_dagster.execution.distributed import RESULT_BACKEND
from factory_dagster.execution.instance import ensure_schema
from factory_dagster.storage.profile import BROKER_ENV, DeploymentProfile, ProfileError, check_postgres, redact_url

QUEUE = "dagster"  # the queue dagster-celery's executor sends steps to
CONNECT_TIMEOUT_SECONDS = 5
# How long a production run waits for any worker to answer a ping before refusing to start.
PING_SECONDS = 5.0


def check_broker(url: str) -> None:
    """Connect to the broker once; an unreachable one is a one-line `ProfileError`."""
    from kombu.connection import Connection  # lazy: Celery's messaging is needed by workers only

    try:
        with Connection(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:  # kombu wraps each transport's own errors differently
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
        raise ProfileError(
            f"Celery broker {redact_url(url)} unreachable: {reason}; start it (make services) or set {BROKER_ENV}"
        ) from None


def check_services(profile: DeploymentProfile) -> None:
    """The broker, then the Dagster instance's database, then the warehouse's."""
    if profile.embedded or profile.broker is None or profile.instance is None or profile.warehouse is None:
        raise ProfileError("a worker runs the production profile's steps: set FACTORY_PROFILE=production")
    check_broker(profile.broker)
    ensure_schema(profile.instance)
    check_postgres(profile.warehouse, "warehouse database")


def check_workers(profile: DeploymentProfile) -> None:
    """At least one worker answers on the broker; else a one-line `ProfileError`.

    A run whose steps no worker takes would wait in the queue forever; it is refused before it
    starts instead. Any worker will do: each serves every line (it rebuilds the run's job).
    """
    assert profile.broker is not None
    check_broker(profile.broker)
    app = celery_worker_app(profile.broker, RESULT_BACKEND)
    try:
        answered = app.control.ping(timeout=PING_SECONDS, limit=1)
    finally:
        app.close()
    if not answered:
        raise ProfileError(
            f"no Celery worker answers on {redact_url(profile.broker)} within {PING_SECONDS:g} s: "
            "start one with `factory worker` (README, Production), then run again"
        )


def run_worker(profile: DeploymentProfile, concurrency: int, name: str | None = None) -> None:
    """Serve steps until stopped: `concurrency` steps at once, each in its own process."""
    assert profile.broker is not None
    app = celery_worker_app(profile.broker, RESULT_BACKEND)
    argv = ["worker", f"--concurrency={concurrency}", "--loglevel=INFO", f"--queues={QUEUE}", "--pool=prefork"]
    if name:
        argv.append(f"--hostname={name}@%h")
    app.worker_main(argv=argv)
