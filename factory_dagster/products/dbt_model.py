"""The dbt model kind: the line's models in dbt_project/models/<line>/ as Dagster assets
(dagster-dbt), each dbt test an asset check, and a GX gate on a model as a separate blocking check.

Their columns are what their compiled SQL produces (`factory prepare` compiles the project),
else what they document (`_models.yml`); where the two disagree, the documentation has drifted.
"""

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from dagster_dbt import (
    DagsterDbtProjectPreparer,
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from factory_dagster.automation.conditions import follow_upstream
from factory_dagster.automation.partitions import (
    Window,
    full_window,
    partitions_def,
    window_from_tags,
    window_of,
)
from factory_dagster.compat import dbt_cli_resource, release_duckdb_adapter_connection
from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK, Gate
from factory_dagster.gates.publish import PARTITION_ROWS, scope_partition_rows
from factory_dagster.products.kind import LINE_TAG, BuildableKind, BuildContext, line_pool
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.column_kinds import Kind, dbt_kind
from factory_dagster.spec.dbt_manifest import models_path
from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.yaml_source import format_key_path, load_yaml
from factory_dagster.storage.atomic import atomic_write_bytes
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import active_profile
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import (
    DBT_PROFILE,
    DBT_PROFILES_DIR,
    Warehouse,
    active_warehouse,
    quote,
    warehouse_for,
)


class DbtModelKind(BuildableKind):
    """dbt models are declared the dbt way, not in the spec: the manifest lists them."""

    label = "dbt model"
    readable = True

    def names(self, spec: FactorySpec) -> list[str]:
        return list(spec.dbt_models)

    def relation(self, spec: FactorySpec, name: str) -> str:
        return spec.dbt_models[name].relation

    def columns(self, spec: FactorySpec, name: str) -> dict[str, Kind] | None:
        """The columns its compiled SQL produces, else the documented ones; each with its
        documented data_type's kind ("unknown" if undocumented). None when neither is known."""
        model = spec.dbt_models[name]
        if model.produced is None:
            return {c: dbt_kind(t) for c, t in model.column_types} or None
        documented = {c.lower(): t for c, t in model.column_types}
        return {c: dbt_kind(documented.get(c.lower(), "")) for c in model.produced}

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        """A product reading a column the model documents but its SQL does not produce is refused
        here, naming the dbt files to fix (the reader's own error names the spec entry)."""
        model = spec.dbt_models[name]
        if not model.not_produced:
            return []
        missing = {c.lower(): c for c in model.not_produced}
        readers: dict[str, list[str]] = {}
        for kind in spec.kinds:
            if not isinstance(kind, BuildableKind):
                continue
            for product in kind.names(spec):
                try:
                    lineage = kind.lineage(spec, product)
                except KeyError:  # it names something unknown: its own kind's check reports that
                    continue
                for deps in lineage.values():
                    for asset, column in deps:
                        if asset == self.key(spec, name) and column.lower() in missing:
                            readers.setdefault(missing[column.lower()], []).append(f"{kind.label} '{product}'")
        return [_documentation_error(spec, name, column, sorted(set(by))) for column, by in readers.items()]

    def build(
        self, spec: FactorySpec, names: list[str], context: BuildContext
    ) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
        assets = build_dbt_assets(spec)
        partitioned = spec.line.dbt.partitioned
        for assets_def in assets:
            if assets_def.partitions_def is not None and partitioned is not None:
                context.partitioned.update({k.to_user_string(): partitioned.partitions for k in assets_def.keys})
        checks = [
            build_table_gate_check(spec, name, context.gates[name], context.partitioned.get(name))
            for name in names
            if name in context.gates
        ]
        return [*assets, *checks]


KIND = DbtModelKind()


def dbt_project(project_dir: Path, target: str | None = None) -> DbtProject:
    """The project run with the factory's dbt profile (its own profiles.yml is not read), on
    `target`: the active warehouse's."""
    return DbtProject(project_dir=project_dir, profiles_dir=DBT_PROFILES_DIR, profile=DBT_PROFILE, target=target)


def relocated_manifest(path: Path, warehouse: Warehouse) -> Path | dict[str, Any]:
    """The prepared manifest, each relation named where `warehouse` keeps it.

    `factory prepare` compiles for the `local` target (`"warehouse"."main"."fct_flights"`);
    dagster-dbt reads a built model's row count and column schema at the manifest's name, which
    on another warehouse does not exist (that metadata went missing on PostgreSQL). The path
    itself when the names already hold.
    """
    manifest = json.loads(path.read_text(encoding="utf-8"))
    relocated = False
    for props in [*manifest.get("nodes", {}).values(), *manifest.get("sources", {}).values()]:
        if props.get("relation_name") and (found := warehouse.dbt_relation(props["relation_name"])) is not None:
            database, schema, _ = found
            relation_name = ".".join(quote(part) for part in found)
            props.update(database=database, schema=schema, relation_name=relation_name)
            relocated = True
    return manifest if relocated else path


def active_dbt_target(home: FactoryHome) -> str:
    """The dbt target of the active profile's warehouse: dbt builds where the factory's steps read."""
    return warehouse_for(active_profile(), home).dbt_target


def dbt_executable() -> str:
    """dbt from PATH, else the one installed beside this interpreter (a venv used unactivated)."""
    return shutil.which("dbt") or str(Path(sys.executable).with_name("dbt"))


def dbt_cli(project_dir: Path, home: FactoryHome) -> DbtCliResource:
    """dbt on the active profile's warehouse, with the factory's dbt profile."""
    return dbt_cli_resource(dbt_project(project_dir, active_dbt_target(home)), dbt_executable())


def _documentation_error(spec: FactorySpec, name: str, column: str, readers: list[str]) -> SpecError:
    """`<_models.yml>: models[i].columns[j]: ...` at the line documenting the column."""
    model = spec.dbt_models[name]
    project = spec.root.dbt_project_dir
    reason = (
        f"{', '.join(readers)} reads column '{column}' of dbt model {name}, which documents it "
        f"but its SQL does not produce it: {model.comparison(project)}"
    )
    if model.docs_file is None:
        return SpecError(project / model.sql_file, "", reason)
    file = project / model.docs_file
    try:
        doc = load_yaml(file)
    except SpecError:
        return SpecError(file, "", reason)
    path: tuple[str | int, ...] = ("models",)
    for index, entry in enumerate(doc.data.get("models") or []):
        if isinstance(entry, dict) and entry.get("name") == name:
            path = ("models", index, "columns")
            for position, documented in enumerate(entry.get("columns") or []):
                if isinstance(documented, dict) and documented.get("name") == column:
                    path = ("models", index, "columns", position)
    return SpecError(file, format_key_path(path), reason, doc.line_of(path))


def prepare_dbt_project(project_dir: Path) -> None:
    """Write the manifest with every model's compiled SQL (`dbt compile`): `factory prepare`'s
    job, never a definitions load's. The columns a model produces are read from that SQL.

    dbt compiles against an empty scratch warehouse (FACTORY_HOME points there), so preparing
    never opens the real warehouse, which a running build may hold; the SQL is the same (an
    incremental model compiles as its full build, whose columns are the table's). The manifest
    names relations as the `local` target does, whatever the active profile: each warehouse
    backend maps them to its own (`Warehouse.model_relation`). Each compile works in a folder of
    its own and the manifest replaces the old one in one rename, so a build reading it, or another
    `factory prepare`, never sees half a file.
    """
    target = project_dir / "target"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".compile-") as work:
        (Path(work) / "home").mkdir()
        done = subprocess.run(
            [
                dbt_executable(),
                "--quiet",
                "compile",
                "--select",
                "resource_type:model",
                "--project-dir",
                str(project_dir),
                "--profiles-dir",
                str(DBT_PROFILES_DIR),
                "--profile",
                DBT_PROFILE,
                "--target",
                "local",
                "--target-path",
                str(Path(work) / "target"),
            ],
            cwd=project_dir,
            env={**os.environ, "FACTORY_HOME": str(Path(work) / "home"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = " ".join(line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip())
            raise RuntimeError(f"dbt compile failed: {said or f'exit code {done.returncode}'}")
        os.replace(Path(work) / "target" / "manifest.json", target / "manifest.json")


def prepare_if_dev(project_dir: Path) -> None:
    """Under `dagster dev` only, parse the project as Dagster's own dev-mode preparation does, with
    the dbt `dbt_executable` finds (DbtProject's own preparer wants `dbt` on PATH)."""
    if DagsterDbtProjectPreparer().using_dagster_dev() and (project_dir / "dbt_project.yml").is_file():
        prepare_dbt_project(project_dir)


RUNS_KEPT = 20


def run_target(home: FactoryHome, context: AssetExecutionContext) -> Path:
    """Where one dbt invocation writes its artifacts and log: under the factory home, not the
    repository; only the latest RUNS_KEPT invocations are kept."""
    folder = home.root / "dbt" / "runs"
    if folder.is_dir():
        for old in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)[:-RUNS_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
    return folder / f"{context.op_def.name}-{context.run.run_id[:8]}-{uuid.uuid4().hex[:6]}"


PARTIAL_PARSE = "partial_parse.msgpack"


@contextlib.contextmanager
def partial_parsing(home: FactoryHome, target: Path, *key: str) -> Iterator[None]:
    """Let dbt reuse the parse of the last invocation with the same `key` (its step).

    dbt parses the whole project at each invocation unless its target holds a partial parse
    made with the same profile and vars: never the one `factory prepare` wrote (a scratch
    warehouse, no vars). dbt checks the kept file itself and parses in full when it does not
    apply, so a stale one costs nothing but the full parse it would have done anyway.
    """
    kept = home.root / "dbt" / "partial_parse" / f"{hashlib.sha256(json.dumps(key).encode()).hexdigest()[:16]}.msgpack"
    if kept.is_file():
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, target / PARTIAL_PARSE)
    yield
    if (target / PARTIAL_PARSE).is_file():
        atomic_write_bytes(kept, (target / PARTIAL_PARSE).read_bytes())


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in the environment while dbt runs (dagster-dbt hands dbt a copy of it), then back.

    The partition window goes to dbt this way, not as `--vars`: dbt discards its partial parse
    whenever the vars change, so every new window parsed the whole project (≈11 s of a one-day
    backfill); a changed env var re-parses only the models that read it.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


FULL_REFRESH_TAG = "factory/dbt_full_refresh"


def _refresh_args(context: AssetExecutionContext) -> list[str]:
    """`--full-refresh` when the run asks for it (after a model's columns changed, for instance)."""
    return ["--full-refresh"] if context.run.tags.get(FULL_REFRESH_TAG) == "true" else []


class FactoryDbtTranslator(DagsterDbtTranslator):
    """dbt models follow their upstream automatically, once its blocking checks passed; each
    carries its line's tag and is in its line's group."""

    def __init__(self, line: str, settings: DagsterDbtTranslatorSettings | None = None):
        super().__init__(settings=settings)
        self.line = line

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        return {**super().get_tags(dbt_resource_props), LINE_TAG: self.line}

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """`meta.dagster.group` if the project sets one, else the line's group."""
        return super().get_group_name(dbt_resource_props) or self.line

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        return follow_upstream()


def _partition_rows(
    context: AssetExecutionContext, spec: FactorySpec, warehouse: Warehouse, events: list[Any], window: Window
) -> Iterator[Any]:
    """Add per-day row counts to the partitioned models' outputs (read after dbt has finished),
    each on its own partition's materialization."""
    partitioned = spec.line.dbt.partitioned
    assert partitioned is not None  # only the partitioned models' step counts rows per day
    column = quote(partitioned.date_column)
    for event in events:
        if isinstance(event, dg.Output) and event.output_name in spec.dbt_models:
            if partitioned.date_column in (KIND.columns(spec, event.output_name) or {}):
                rows = warehouse.read_arrow(
                    f"select cast({column} as date) as day, count(*) as n "
                    f"from {warehouse.model_relation(KIND.relation(spec, event.output_name))} "
                    f"where {warehouse.between(column)} group by 1",
                    [window.first, window.last],
                )
                counts = {
                    str(d): n for d, n in zip(rows.column("day").to_pylist(), rows.column("n").to_pylist(), strict=True)
                }
                metadata = {**event.metadata, PARTITION_ROWS: {k: counts.get(k, 0) for k in window.keys}}
                key = context.asset_key_for_output(event.output_name)
                event = event.with_metadata(scope_partition_rows(context, metadata, key))
        yield event


def finished_events(invocation: DbtCliInvocation) -> list[Any]:
    """dbt's events as Dagster events with their row counts and column schemas, once dbt ended.

    dagster-dbt's metadata fetchers poll their queue in a loop for as long as dbt runs: a core
    spent on nothing, taken from dbt and DuckDB on a two-core machine (≈16 s of a flights
    build). Reading dbt's whole output first blocks on the pipe instead; the fetchers then map
    finished events, which DuckDB needs anyway (dbt's write lock released before they query).
    A failed dbt still raises when its events are streamed.
    """
    invocation.is_successful()  # keeps dbt's output on the invocation, which `stream()` replays
    return list(invocation.stream().fetch_row_counts().fetch_column_metadata())


def build_dbt_assets(spec: FactorySpec) -> list[dg.AssetsDefinition]:
    """The dbt project as assets: the partitioned selection (run per window) and the rest."""
    if spec.dbt_project_dir is None:
        return []
    project = dbt_project(spec.dbt_project_dir)
    # Only the profile matters here: a relation is relocated for a warehouse server, never for the
    # embedded file under the home.
    manifest = relocated_manifest(project.manifest_path, active_warehouse(FactoryHome.resolve()))
    translator = FactoryDbtTranslator(spec.name, settings=DagsterDbtTranslatorSettings(enable_code_references=True))
    partitioned = spec.line.dbt.partitioned
    line_models = f"path:{models_path(spec.name)}"
    # dbt swaps a model in through relations named after it (`<model>__dbt_tmp`, `__dbt_backup`)
    # and deletes then inserts a window of an incremental one: two invocations on the line's
    # models at once collide or duplicate rows. One dbt step of a line at a time, across runs.
    pool = line_pool(spec, "dbt")
    definitions = []

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name=f"{spec.name}_dbt_models",
        select=line_models,
        exclude=partitioned.select if partitioned else None,
        pool=pool,
    )
    def _dbt_models(context: AssetExecutionContext, dbt: DbtCliResource, factory: FactoryResource) -> Iterator[Any]:
        target = run_target(factory.paths, context)
        try:
            with partial_parsing(factory.paths, target, context.op_def.name):
                yield from finished_events(
                    dbt.cli(["build", *_refresh_args(context)], context=context, target_path=target)
                )
        finally:
            release_duckdb_adapter_connection()

    definitions.append(_dbt_models)
    if partitioned is None:
        return definitions
    partitions = spec.partitions[partitioned.partitions]

    @dbt_assets(
        manifest=manifest,
        project=project,
        dagster_dbt_translator=translator,
        name=f"{spec.name}_dbt_{partitioned.partitions}_models",
        select=f"{line_models},{partitioned.select}",  # the intersection: the line's partitioned models
        partitions_def=partitions_def(partitions),
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
    )
    def _partitioned_models(
        context: AssetExecutionContext, dbt: DbtCliResource, factory: FactoryResource
    ) -> Iterator[Any]:
        window = window_of(context, partitions)
        window_env = {"FACTORY_MIN_DATE": window.first.isoformat(), "FACTORY_MAX_DATE": window.last.isoformat()}
        refresh = _refresh_args(context)
        if refresh and window != full_window(partitions):
            raise dg.Failure(
                description="a dbt full refresh rebuilds the partitioned models from scratch: run it "
                "over every partition (factory build --full-refresh, no --start/--end)",
                allow_retries=False,
            )
        target = run_target(factory.paths, context)
        try:
            with partial_parsing(factory.paths, target, context.op_def.name), environment(window_env):
                invocation = dbt.cli(["build", *refresh], context=context, target_path=target)
                events = finished_events(invocation)
        finally:
            release_duckdb_adapter_connection()
        yield from _partition_rows(context, spec, factory.warehouse, events, window)

    definitions.append(_partitioned_models)
    return definitions


def build_table_gate_check(
    spec: FactorySpec, product: str, gate: Gate, partitions: str | None = None
) -> dg.AssetChecksDefinition:
    """A gate on a dbt model, run as a separate blocking check after dbt builds the table.

    dbt has already replaced the table when the check runs, so the gate cannot keep it from
    readers; it keeps everything downstream from being rebuilt on it (blocking), and quarantines
    a copy. `partitions`: the model's partitions, if any: the gate then reads the run's window only.
    """
    check_spec = gate.check_spec()
    partitions_spec = spec.partitions[partitions] if partitions else None
    date_column = spec.line.dbt.partitioned.date_column if partitions and spec.line.dbt.partitioned else None

    @dg.asset_check(
        asset=gate.asset_key,
        name=GATE_CHECK,
        blocking=True,
        description=check_spec.description,
        metadata=check_spec.metadata,
    )
    def _gate(context: dg.AssetCheckExecutionContext, factory: FactoryResource) -> dg.AssetCheckResult:
        home, warehouse = factory.paths, factory.warehouse
        sql, params, parameters = f"select * from {warehouse.model_relation(KIND.relation(spec, product))}", [], None
        if partitions_spec is not None and date_column is not None:
            window = window_from_tags(context.run.tags, partitions_spec) or full_window(partitions_spec)
            sql += f" where {warehouse.between(quote(date_column))}"
            params, parameters = [window.first, window.last], window.parameters()
        frame = warehouse.read_frame(sql, params)
        result = gate.evaluate(frame, parameters)
        history.record(home, gate.asset, context.run.run_id, result)
        extra = {}
        if result.blocking:
            folder = quarantine(home, gate.asset, context.run.run_id, result.reason(), frame)
            extra = {"quarantine": str(folder)}
        return gate.check_result(result, extra)

    return _gate
