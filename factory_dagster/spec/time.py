"""Time in the spec: partitions, freshness, jobs, sensors, schedules and automation."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import PositiveInt, model_validator

from factory_dagster.spec.types import Duration, Name, NonEmpty, Strict, TimeZone


class FreshnessSpec(Strict):
    """How stale a product may get: warn after `warn_after`, fail after `fail_after`."""

    fail_after: Duration
    warn_after: Duration | None = None

    @model_validator(mode="after")
    def _order(self) -> FreshnessSpec:
        if self.warn_after is not None and self.warn_after >= self.fail_after:
            raise ValueError("warn_after must be shorter than fail_after")
        return self


class PartitionsSpec(Strict):
    """A daily partitioning: one partition per local day from `start` to `end` (exclusive)."""

    type: Literal["daily"] = "daily"
    start: dt.date
    end: dt.date | None = None
    timezone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _order(self) -> PartitionsSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AutomationSpec(Strict):
    """Declarative automation: assets with a condition are evaluated by a sensor in the daemon."""

    enabled: bool = True
    minimum_interval_seconds: PositiveInt = 30


class JobSpec(Strict):
    """A named set of assets run together, e.g. the daily chain of one partition."""

    description: NonEmpty
    select: NonEmpty  # a Dagster asset selection, e.g. 'raw/flights*'
    partitions: Name | None = None  # keep only the selected assets partitioned this way


class SensorSpec(Strict):
    """Run `job` for the day of every new or changed file in a source's landing folder."""

    description: NonEmpty
    source: Name
    job: Name
    minimum_interval_seconds: PositiveInt = 30
    enabled: bool = True


class ScheduleSpec(Strict):
    """Run a job (or an asset selection) on a cron; a partitioned job runs its latest day."""

    description: NonEmpty
    cron: NonEmpty
    timezone: TimeZone = "UTC"
    job: Name | None = None
    select: NonEmpty | None = None
    partition: Literal["latest", "latest_landed"] = "latest"
    enabled: bool = True

    @model_validator(mode="after")
    def _target(self) -> ScheduleSpec:
        if (self.job is None) == (self.select is None):
            raise ValueError("give exactly one of job or select")
        import dagster as dg

        try:  # Dagster's own check of a schedule's cron, through its public definition
            dg.ScheduleDefinition(name="cron_check", cron_schedule=self.cron, job_name="cron_check")
        except dg.DagsterInvalidDefinitionError:
            raise ValueError(f"{self.cron!r} is not a valid cron expression") from None
        return self
