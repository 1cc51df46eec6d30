"""Cross-reference checks that belong to no product kind: asset keys unique within a line, and
time (partitions, jobs, sensors, schedules) referring to things that exist."""

from __future__ import annotations

from typing import Any

from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.line import FactorySpec


def check_unique_keys(spec: FactorySpec) -> list[SpecError]:
    """The line's products share one asset-key namespace (sources live under raw/)."""
    errors: list[SpecError] = []
    owners: dict[str, tuple[Any, str]] = {}  # key -> (the first kind naming it, its name there)
    for kind in spec.kinds:
        for name in kind.names(spec):
            key = kind.key(spec, name)
            if key not in owners:
                owners[key] = (kind, name)
                continue
            first, first_name = owners[key]
            if kind.section is not None:
                errors.append(
                    spec.error(kind.section, name, (), f"duplicate key '{name}': already used by a {first.label}")
                )
            elif first.section is not None:  # a derived asset (no section of its own) takes a declared name
                errors.append(
                    spec.error(
                        first.section, first_name, (), f"duplicate key '{key}': also the key of a derived {kind.label}"
                    )
                )
    return errors


def check_partitions_name(
    spec: FactorySpec, section: str, name: str, path: tuple, value: str | None, errors: list[SpecError]
) -> None:
    if value is not None and value not in spec.partitions:
        errors.append(
            spec.error(section, name, path, f"unknown partitions '{value}' (known: {known(spec.partitions)})")
        )


def check_time(spec: FactorySpec) -> list[SpecError]:
    """Partitions, jobs, sensors and schedules refer to things that exist."""
    errors: list[SpecError] = []
    dbt = spec.line.dbt
    if dbt.partitioned is not None and dbt.partitioned.partitions not in spec.partitions:
        errors.append(
            spec.error(
                "line",
                "line",
                ("dbt", "partitioned", "partitions"),
                f"unknown partitions '{dbt.partitioned.partitions}' (known: {known(spec.partitions)})",
            )
        )
    for name, job in spec.jobs.items():
        check_partitions_name(spec, "jobs", name, ("partitions",), job.partitions, errors)
        try:
            import dagster as dg

            dg.AssetSelection.from_string(job.select)
        except Exception as exc:  # dagster raises several types for a selection it cannot parse
            errors.append(spec.error("jobs", name, ("select",), f"not a Dagster asset selection: {exc}"))
    for name, sensor in spec.sensors.items():
        source: Any = spec.products.get("sources", {}).get(sensor.source)  # a source kind's entry (landing, partition)
        if source is None:
            errors.append(
                spec.error(
                    "sensors",
                    name,
                    ("source",),
                    f"unknown source '{sensor.source}' (known: {known(spec.products.get('sources', {}))})",
                )
            )
        elif source.landing is None:
            errors.append(
                spec.error("sensors", name, ("source",), f"source '{sensor.source}' has no landing folder to watch")
            )
        if sensor.job not in spec.jobs:
            errors.append(
                spec.error("sensors", name, ("job",), f"unknown job '{sensor.job}' (known: {known(spec.jobs)})")
            )
        elif (
            source is not None
            and source.partition is not None
            and spec.jobs[sensor.job].partitions != source.partition.partitions
        ):
            errors.append(
                spec.error(
                    "sensors", name, ("job",), f"job '{sensor.job}' is not partitioned like source '{sensor.source}'"
                )
            )
    for name, schedule in spec.schedules.items():
        if schedule.job is not None and schedule.job not in spec.jobs:
            errors.append(
                spec.error("schedules", name, ("job",), f"unknown job '{schedule.job}' (known: {known(spec.jobs)})")
            )
        if schedule.select is not None:
            try:
                import dagster as dg

                dg.AssetSelection.from_string(schedule.select)
            except Exception as exc:  # dagster raises several types for a selection it cannot parse
                errors.append(spec.error("schedules", name, ("select",), f"not a Dagster asset selection: {exc}"))
    return errors
