"""Steps on Celery workers: the production profile's executor and the job its workers rebuild.

Embedded runs every step in the `factory` process (`in_process_executor`). Production hands each
step to a Celery worker through the broker (`dagster-celery`); a worker rebuilds the run's job
from a code pointer (`factory_dagster.definitions.factory_job` with the run's root, lines and
home), so such a run starts with `execute_job`, never `execute_in_process`.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from factory_dagster.storage.profile import BROKER_ENV, DeploymentProfile

# Results come straight back to the process orchestrating the run (the broker carries them).
RESULT_BACKEND = "rpc://"


def celery_config(profile: DeploymentProfile) -> dict[str, Any]:
    """The Celery executor's config: the broker named by its variable when set (its URL may hold
    a password), else the default broker."""
    broker: object = {"env": BROKER_ENV} if os.environ.get(BROKER_ENV) else profile.broker
    return {"broker": broker, "backend": RESULT_BACKEND}


def factory_executor(profile: DeploymentProfile) -> dg.ExecutorDefinition:
    """In process when embedded; Celery workers in production.

    dagster-celery (and Celery) are imported only for production: an embedded load never pays them.
    """
    if profile.embedded:
        return dg.in_process_executor
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_config(profile), name="factory_celery")
