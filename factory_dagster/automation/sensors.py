"""The landing-zone sensor: each new or changed file in a source's landing folder runs its day."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from factory_dagster.automation import landing
from factory_dagster.automation.partitions import partitions_def
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec


def build_landing_sensor(spec: FactorySpec, name: str, job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    sensor_spec = spec.sensors[name]
    source = spec.sources[sensor_spec.source]
    definition = partitions_def(spec.partitions[source.partition.partitions])
    keys = definition.get_partition_keys()
    first, last = keys[0], keys[-1]

    @dg.sensor(
        name=name,
        job=job,
        description=sensor_spec.description,
        minimum_interval_seconds=sensor_spec.minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING if sensor_spec.enabled else dg.DefaultSensorStatus.STOPPED,
    )
    def _watch(context: dg.SensorEvaluationContext, factory: FactoryResource) -> dg.SensorResult:
        folder = landing.landing_dir(factory.paths, source)
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        requests, refused = [], []
        valid = set(definition.get_partition_keys())
        for landed in landing.scan(folder, dt.date.fromisoformat(first), dt.date.fromisoformat(last)):
            fingerprint = landing.fingerprint(landed.path)
            if seen.get(landed.path.name) == fingerprint:
                continue  # each version of a file triggers once
            seen[landed.path.name] = fingerprint
            if landed.problem or landed.day is None or landed.day.isoformat() not in valid:
                refused.append(landed.problem or f"{landed.path.name}: {landed.day} is not a partition")
                context.log.warning(f"refused {folder / landed.path.name}: {refused[-1]}")
                continue
            requests.append(
                dg.RunRequest(
                    run_key=f"{landed.path.name}:{fingerprint}",
                    partition_key=landed.day.isoformat(),
                    tags={"factory/landing_file": str(landed.path), "factory/sensor": name},
                )
            )
        skip = None
        if not requests:
            skip = dg.SkipReason("; ".join(refused) if refused else f"no new or changed file in {folder}")
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(seen, sort_keys=True), skip_reason=skip)

    return _watch
