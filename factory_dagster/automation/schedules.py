"""Schedules declared in the spec: a job or an asset selection on a cron, in a time zone."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from factory_dagster.automation import landing
from factory_dagster.automation.jobs import checked_selection
from factory_dagster.automation.partitions import partitions_def
from factory_dagster.compat import AssetGraph
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec


def latest_landed_day(spec: FactorySpec, partitions: str, factory: FactoryResource) -> dt.date | None:
    """The newest day with a landing file, over every source partitioned by `partitions`."""
    days = [
        f.day
        for source in spec.sources.values()
        if source.landing and source.partition and source.partition.partitions == partitions
        for f in landing.scan(landing.landing_dir(factory.paths, source))
        if f.problem is None and f.day
    ]
    return max(days, default=None)


def build_schedule(
    spec: FactorySpec, name: str, jobs: dict[str, dg.UnresolvedAssetJobDefinition], graph: AssetGraph
) -> dg.ScheduleDefinition:
    schedule = spec.schedules[name]
    if schedule.job is not None:
        job = jobs[schedule.job]
        partitions = spec.jobs[schedule.job].partitions
    else:
        assert schedule.select is not None  # the spec model requires a job or a selection
        selection = checked_selection(spec, "schedules", name, schedule.select, None, graph)
        job = dg.define_asset_job(f"{name}_job", selection=selection, description=schedule.description)
        partitions = None
    status = dg.DefaultScheduleStatus.RUNNING if schedule.enabled else dg.DefaultScheduleStatus.STOPPED

    @dg.schedule(
        name=name,
        cron_schedule=schedule.cron,
        job=job,
        execution_timezone=schedule.timezone,
        description=schedule.description,
        default_status=status,
    )
    def _tick(context: dg.ScheduleEvaluationContext, factory: FactoryResource) -> dg.RunRequest | dg.SkipReason:
        tick = context.scheduled_execution_time.isoformat() if context.scheduled_execution_time else "manual"
        if partitions is None:
            return dg.RunRequest(run_key=f"{name}:{tick}", tags={"factory/schedule": name})
        if schedule.partition == "latest_landed":
            day = latest_landed_day(spec, partitions, factory)
            if day is None:
                return dg.SkipReason("no file in the landing zone yet")
            key = day.isoformat()
        else:
            key = partitions_def(spec.partitions[partitions]).get_last_partition_key()
            if key is None:
                return dg.SkipReason("no partition yet")
        return dg.RunRequest(run_key=f"{name}:{key}:{tick}", partition_key=key, tags={"factory/schedule": name})

    return _tick
