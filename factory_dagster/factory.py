"""Build the Dagster definitions of a product line: spec → builders → Definitions."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from factory_dagster.automation.jobs import build_jobs
from factory_dagster.automation.schedules import build_schedule
from factory_dagster.automation.sensors import build_landing_sensor
from factory_dagster.gates.gate import Gate
from factory_dagster.gates.suites import load_suites
from factory_dagster.lineage.definitions import (
    build_governance_assets,
    build_openlineage_sensors,
)
from factory_dagster.products.catalog import asset_columns, source_key
from factory_dagster.products.dbt import (
    build_dbt_assets,
    dbt_resource,
    prepare_dbt_project,
)
from factory_dagster.products.feature_sets import build_feature_set_asset
from factory_dagster.products.models import build_model_asset
from factory_dagster.products.predictions import build_predictions_asset
from factory_dagster.products.raw import build_source_asset
from factory_dagster.products.table_gates import build_table_gate_check
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec, load_line
from factory_dagster.storage.home import resolve_home


def build_gates(spec: FactorySpec) -> dict[str, Gate]:
    """A gate for every asset that has a suite in the line's suites folder, by asset key."""
    if spec.line.gates is None:
        return {}
    suites = load_suites(spec.resolve_path(spec.line.gates.suites_dir), asset_columns(spec))
    return {key: Gate(dg.AssetKey.from_user_string(key), suite, spec.line.gates.engine)
            for key, suite in suites.items()}


def partitioned_products(spec: FactorySpec, dbt: list[dg.AssetsDefinition]) -> dict[str, str]:
    """Data products (raw sources, dbt models) by name → the partitions they are split by."""
    products = {name: s.partition.partitions for name, s in spec.sources.items() if s.partition}
    if spec.line.dbt is not None and spec.line.dbt.partitioned is not None:
        for assets_def in dbt:
            if assets_def.partitions_def is not None:
                products.update({key.to_user_string(): spec.line.dbt.partitioned.partitions
                                 for key in assets_def.keys})
    return products


def build_assets(spec: FactorySpec, gates: dict[str, Gate]) -> list[dg.AssetsDefinition]:
    """Every asset of the line, upstream first; factory-written assets publish through their gate."""
    dbt = build_dbt_assets(spec)
    partitioned = partitioned_products(spec, dbt)
    return [
        *(build_source_asset(spec, name, gates.get(source_key(name).to_user_string())) for name in spec.sources),
        *dbt,
        *(build_feature_set_asset(spec, name, gates.get(name), partitioned) for name in spec.feature_sets),
        *(build_model_asset(spec, name) for name in spec.models),
        *(build_predictions_asset(spec, name, gates.get(name)) for name in spec.predictions),
    ]


def build_automation(spec: FactorySpec, assets: list[dg.AssetsDefinition]) -> dict[str, list]:
    """Jobs, the landing sensors, the schedules and the automation sensor the spec declares."""
    graph = AssetGraph.from_assets(assets)  # built once: every job and schedule selection resolves on it
    jobs = build_jobs(spec, graph)
    sensors: list = [build_landing_sensor(spec, name, jobs[s.job]) for name, s in spec.sensors.items()]
    if spec.line.automation.enabled:
        sensors.append(dg.AutomationConditionSensorDefinition(
            "factory_automation", target=dg.AssetSelection.all(),
            minimum_interval_seconds=spec.line.automation.minimum_interval_seconds,
            default_status=dg.DefaultSensorStatus.RUNNING,
            description="Evaluates every asset's automation condition (follow upstream once its gates passed)."))
    sensors += build_openlineage_sensors(spec)
    schedules = [build_schedule(spec, name, jobs, graph) for name in spec.schedules]
    return {"jobs": list(jobs.values()), "sensors": sensors, "schedules": schedules}


def build_checks(spec: FactorySpec, gates: dict[str, Gate], assets: list[dg.AssetsDefinition]
                 ) -> list[dg.AssetChecksDefinition]:
    """Gates on dbt models run as separate blocking checks after dbt builds the table."""
    partitioned = partitioned_products(spec, assets)
    return [build_table_gate_check(spec, name, gates[name], partitioned.get(name))
            for name in spec.dbt_models if name in gates]


def build_definitions(spec_dir: Path | str | None = None, home: Path | str | None = None,
                      spec: FactorySpec | None = None) -> dg.Definitions:
    """The code location for a product line (`FACTORY_SPECS`, default flights) and a factory home."""
    spec = spec or load_line(spec_dir, prepare_dbt=prepare_dbt_project)
    with warnings.catch_warnings():  # backfill policies and partition mappings are used knowingly
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _definitions(spec, resolve_home(home))


def _definitions(spec: FactorySpec, home_path: Path) -> dg.Definitions:
    os.environ["FACTORY_HOME"] = str(home_path)  # dbt, run as a child process, reads it
    resources: dict[str, object] = {"factory": FactoryResource(home=str(home_path))}
    if spec.dbt_project_dir is not None:
        resources["dbt"] = dbt_resource(spec)
    gates = build_gates(spec)
    assets = build_assets(spec, gates)
    checks = build_checks(spec, gates, assets)
    return dg.Definitions(
        assets=[*assets, *build_governance_assets(spec, gates, [*assets, *checks])],
        asset_checks=checks,
        **build_automation(spec, assets),
        resources=resources,
        # One process writes the embedded DuckDB warehouse at a time.
        executor=dg.in_process_executor,
    )
