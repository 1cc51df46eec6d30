"""Build the Dagster definitions of a factory: every line it serves → builders → one Definitions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from factory_dagster.automation.jobs import build_jobs
from factory_dagster.automation.schedules import build_schedule
from factory_dagster.automation.sensors import build_landing_sensor
from factory_dagster.compat import AssetGraph, asset_graph
from factory_dagster.execution.distributed import factory_executor
from factory_dagster.gates.gate import Gate
from factory_dagster.gates.suites import load_suites
from factory_dagster.lineage.definitions import (
    build_governance_assets,
    build_openlineage_sensors,
)
from factory_dagster.products import KINDS, load_factory, load_line
from factory_dagster.products.dbt_model import dbt_cli, prepare_if_dev
from factory_dagster.products.kind import BuildContext
from factory_dagster.products.retrain import build_retrain_sensor
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactoryRoot, FactorySpec, find_root
from factory_dagster.spec.across_lines import check_across_lines
from factory_dagster.spec.loader import raise_all
from factory_dagster.storage.home import FactoryHome, resolve_home
from factory_dagster.storage.profile import active_profile


def build_gates(spec: FactorySpec) -> dict[str, Gate]:
    """A gate for every asset that has a suite in expectations/<line>/, by asset key."""
    if not spec.suites_dir.is_dir():
        return {}
    suites = load_suites(spec.suites_dir, spec.asset_columns())
    return {
        key: Gate(dg.AssetKey.from_user_string(key), suite, spec.line.gates.engine) for key, suite in suites.items()
    }


def build_line(spec: FactorySpec, gates: dict[str, Gate]) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
    """Every asset and check of the line, kind by kind, upstream first; factory-written assets
    publish through their gate."""
    context = BuildContext(
        gates=gates, partitioned={name: s.partition.partitions for name, s in spec.sources.items() if s.partition}
    )
    return [
        definition for kind in KINDS if (names := kind.names(spec)) for definition in kind.build(spec, names, context)
    ]


def build_automation(spec: FactorySpec, line_keys: set[dg.AssetKey], graph: AssetGraph) -> dict[str, list]:
    """Jobs, the landing sensors, the schedules and the automation sensor a line declares."""
    jobs = build_jobs(spec, graph)
    sensors: list = [build_landing_sensor(spec, name, jobs[s.job]) for name, s in spec.sensors.items()]
    if spec.line.automation.enabled:
        sensors.append(
            dg.AutomationConditionSensorDefinition(
                f"{spec.name}_automation",
                target=dg.AssetSelection.assets(*line_keys),
                minimum_interval_seconds=spec.line.automation.minimum_interval_seconds,
                default_status=dg.DefaultSensorStatus.RUNNING,
                description=f"Evaluates the automation condition of every asset of line {spec.name} "
                "(follow upstream once its gates passed).",
            )
        )
    sensors += [sensor for model in spec.models if (sensor := build_retrain_sensor(spec, model)) is not None]
    schedules = [build_schedule(spec, name, jobs, graph) for name in spec.schedules]
    return {"jobs": list(jobs.values()), "sensors": sensors, "schedules": schedules}


def load_specs(
    lines: Sequence[str | Path] | str | Path | None = None, root: FactoryRoot | Path | str | None = None
) -> list[FactorySpec]:
    """The lines to serve: names (under the factory root) or line folders (`<root>/lines/<name>`),
    else the factory's configured lines. Under `dagster dev` the dbt project is prepared first."""
    if isinstance(lines, (str, Path)):
        lines = [lines]
    folders = [Path(line) for line in lines or [] if isinstance(line, Path) or "/" in line]
    if not folders:
        factory_root = root if isinstance(root, FactoryRoot) else find_root(root)
        prepare_if_dev(factory_root.dbt_project_dir)
        return load_factory(factory_root, [str(line) for line in lines or []] or None)
    specs = []
    for folder in folders:
        folder_root = find_root(folder.expanduser().resolve().parent.parent)
        prepare_if_dev(folder_root.dbt_project_dir)
        specs.append(load_line(folder, folder_root))
    raise_all(check_across_lines(specs))
    return specs


def build_definitions(
    lines: Sequence[str | Path] | str | Path | None = None,
    *,
    root: FactoryRoot | Path | str | None = None,
    home: Path | str | None = None,
    specs: Sequence[FactorySpec] | None = None,
) -> dg.Definitions:
    """One code location for the factory's lines (or `lines`), writing into a factory home.

    Loading has no side effect: no dbt parse (but Dagster's own under `dagster dev`), no
    environment change, no write.
    """
    specs = list(specs) if specs is not None else load_specs(lines, root)
    with warnings.catch_warnings():  # backfill policies and partition mappings are used knowingly
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return _definitions(specs, resolve_home(home))


def _definitions(specs: list[FactorySpec], home_path: Path) -> dg.Definitions:
    resources: dict[str, object] = {"factory": FactoryResource(home=str(home_path))}
    dbt_projects = {project for s in specs if (project := s.dbt_project_dir) is not None}
    if dbt_projects:  # one dbt project for every line (dbt_project/ under the factory root)
        resources["dbt"] = dbt_cli(next(iter(dbt_projects)), FactoryHome(home_path))
    gates = {spec.name: build_gates(spec) for spec in specs}
    built = {spec.name: build_line(spec, gates[spec.name]) for spec in specs}
    # An AssetChecksDefinition is an AssetsDefinition too: tell them apart by the narrower type.
    checks = [c for spec in specs for c in built[spec.name] if isinstance(c, dg.AssetChecksDefinition)]
    assets = [a for spec in specs for a in built[spec.name] if not isinstance(a, dg.AssetChecksDefinition)]
    graph = asset_graph([*assets, *checks], resources)  # built once: every selection and report resolves on it
    automation: dict[str, list] = {"jobs": [], "sensors": [], "schedules": []}
    for spec in specs:
        keys = {k for a in built[spec.name] if not isinstance(a, dg.AssetChecksDefinition) for k in a.keys}
        for kind, definitions in build_automation(spec, keys, graph).items():
            automation[kind] += definitions
    automation["sensors"] += build_openlineage_sensors(specs)
    governance, debt_checks = build_governance_assets(specs, gates, graph)
    return dg.Definitions(
        assets=[*assets, *governance],
        asset_checks=[*checks, *debt_checks],
        jobs=automation["jobs"],
        sensors=automation["sensors"],
        schedules=automation["schedules"],
        resources=resources,
        # Embedded: one process writes the DuckDB warehouse at a time; production: Celery workers.
        executor=factory_executor(active_profile()),
    )
