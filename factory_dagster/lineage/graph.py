"""The factory as one graph: every asset with its role, metadata, checks and history.

Built from the same Definitions the UI loads, the spec, the dbt manifest and the Dagster
instance. The debt rules, the ML Test Score and the reports all read this one view.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg

from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.gates.publish import WINDOW_ROWS
from factory_dagster.gates.suites import Suite
from factory_dagster.products.kind import LINE_TAG
from factory_dagster.products.metadata import metadata_values
from factory_dagster.products.model import PROMOTION_CHECK
from factory_dagster.products.monitor import DRIFT_CHECK
from factory_dagster.products.performance import PERFORMANCE_CHECK
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.dbt_manifest import load_manifest, models_path

Role = Literal["source", "data_product", "feature_set", "model", "predictions", "monitor", "report"]
REPORT_GROUP = "governance"
# On the checks that show the governance reports on each asset: they judge the graph, they are
# not part of it (no test of the data, no gate).
GOVERNANCE_CHECK = "factory/governance"
PIPELINE_ROLES: tuple[Role, ...] = ("source", "data_product", "feature_set", "model", "predictions")
DISTRIBUTION_EXPECTATIONS = frozenset(
    {
        "expect_column_mean_to_be_between",
        "expect_column_median_to_be_between",
        "expect_column_quantile_values_to_be_between",
        "expect_column_stdev_to_be_between",
        "expect_column_proportion_of_unique_values_to_be_between",
        "expect_column_kl_divergence_to_be_less_than",
        "expect_column_unique_value_count_to_be_between",
    }
)


@dataclass
class CheckInfo:
    name: str
    blocking: bool
    kind: Literal["gate", "dbt_test", "promotion", "drift", "performance", "other"]


@dataclass
class CheckRun:
    timestamp: float
    passed: bool
    severity: str
    description: str = ""
    run_id: str = ""


@dataclass
class StepRun:
    """How long the step that built an asset took in one run, and the rows it handled (Mon6)."""

    run_id: str
    timestamp: float
    seconds: float
    rows: int | None


@dataclass
class AssetNode:
    key: str
    role: Role
    group: str | None
    owners: list[str]
    description: str
    kinds: set[str]
    tags: dict[str, str]
    code_version: str | None
    parents: set[str] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    columns: list[str] = field(default_factory=list)
    checks: list[CheckInfo] = field(default_factory=list)
    partitioned: bool = False
    freshness: bool = False
    automation: bool = False
    layer: str | None = None  # dbt: staging, intermediate, marts (from the model's folder)
    declared_key: list[str] | None = None  # the key the product declares (None: not keyed)
    key_tested: bool = False  # a unique + not-null test (dbt or GX) covers the key
    drift_gate: bool = False  # its gate bounds a distribution (mean, quantiles, ...)
    suite: Suite | None = None
    last_materialized: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # of the latest materialization
    column_lineage: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # column → upstream columns
    history: list[dict[str, Any]] = field(default_factory=list)  # models: recent trainings, newest first
    step: str | None = None  # the execution step (op) that builds it; a dbt step builds many
    check_history: dict[str, list[CheckRun]] = field(default_factory=dict)  # newest first
    step_runs: list[StepRun] = field(default_factory=list)  # models and predictions: newest first

    def check_of(self, kind: str) -> CheckInfo | None:
        """Its check of that kind (a `drift` monitor, the `promotion`, ...), if it has one."""
        return next((c for c in self.checks if c.kind == kind), None)

    def last_run(self, kind: str) -> CheckRun | None:
        """The latest recorded evaluation of its check of that kind."""
        check = self.check_of(kind)
        runs = self.check_history.get(check.name, []) if check else []
        return max(runs, key=lambda r: r.timestamp) if runs else None

    @property
    def gated(self) -> bool:
        return any(c.blocking for c in self.checks)


@dataclass
class FactoryGraph:
    spec: FactorySpec
    nodes: dict[str, AssetNode]
    exposures: dict[str, set[str]]  # dbt exposure name → asset keys it reads
    now: float
    has_history: bool = False  # built with an instance: materializations and check results known

    def upstream(self, key: str) -> set[str]:
        return self._walk(key, "parents")

    def downstream(self, key: str) -> set[str]:
        return self._walk(key, "children")

    def _walk(self, key: str, direction: str) -> set[str]:
        seen: set[str] = set()
        stack = list(getattr(self.nodes[key], direction))
        while stack:
            current = stack.pop()
            if current in seen or current not in self.nodes:
                continue
            seen.add(current)
            stack.extend(getattr(self.nodes[current], direction))
        return seen

    def of_role(self, *roles: Role) -> list[AssetNode]:
        return [n for n in self.nodes.values() if n.role in roles]

    def exposed(self) -> set[str]:
        """Assets something outside the graph reads: dbt exposures and every predictions asset."""
        return {k for keys in self.exposures.values() for k in keys} | {n.key for n in self.of_role("predictions")}

    def depth(self, key: str, memo: dict[str, int] | None = None) -> int:
        """Longest path from a root to this asset, in edges."""
        memo = {} if memo is None else memo
        if key not in memo:
            parents = [p for p in self.nodes[key].parents if p in self.nodes]
            memo[key] = 0 if not parents else 1 + max(self.depth(p, memo) for p in parents)
        return memo[key]


def _role(spec: FactorySpec, key: str, group: str | None) -> Role:
    if group == REPORT_GROUP:
        return "report"
    product = spec.product_of_key(key)
    return product[0].role if product is not None else "data_product"  # type: ignore[return-value]


def _check_kind(
    name: str, spec: dg.AssetCheckSpec
) -> Literal["gate", "dbt_test", "promotion", "drift", "performance", "other"]:
    if name == GATE_CHECK:
        return "gate"
    if name == PROMOTION_CHECK:
        return "promotion"
    if name == DRIFT_CHECK:
        return "drift"
    if name == PERFORMANCE_CHECK:
        return "performance"
    if "dagster_dbt/unique_id" in (spec.metadata or {}):
        return "dbt_test"
    return "other"


def _suite_key_tested(suite: Suite | None, key: list[str] | None) -> bool:
    if suite is None or not key:
        return False
    not_null = {
        e.kwargs.get("column")
        for e in suite.expectations
        if e.type == "expect_column_values_to_not_be_null" and "mostly" not in e.kwargs
    }
    if len(key) == 1:
        return key[0] in not_null and any(
            e.type == "expect_column_values_to_be_unique" and e.kwargs.get("column") == key[0]
            for e in suite.expectations
        )
    return set(key) <= not_null and any(
        e.type == "expect_compound_columns_to_be_unique" and set(e.kwargs.get("column_list", [])) == set(key)
        for e in suite.expectations
    )


def _dbt_facts(spec: FactorySpec) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """Per dbt model: layer, key, whether unique+not_null test it; and the exposures."""
    if spec.dbt_project_dir is None:
        return {}, {}
    manifest = load_manifest(spec.dbt_project_dir, check_current=False)
    by_id = {uid: node for uid, node in manifest.get("nodes", {}).items() if node.get("resource_type") == "model"}
    tests: dict[str, dict[str, set[str]]] = {}
    combinations: dict[str, list[set[str]]] = {}  # model → column sets tested unique together
    for node in manifest.get("nodes", {}).values():
        if node.get("resource_type") != "test":
            continue
        metadata = node.get("test_metadata") or {}
        name = metadata.get("name")
        model = node.get("attached_node")
        if name == "unique_combination_of_columns" and model in by_id:
            columns = (metadata.get("kwargs") or {}).get("combination_of_columns") or []
            combinations.setdefault(by_id[model]["name"], []).append(set(columns))
        if not node.get("column_name"):
            continue
        if name in ("unique", "not_null") and model in by_id:
            tests.setdefault(by_id[model]["name"], {}).setdefault(node["column_name"], set()).add(name)
    facts = {}
    for node in by_id.values():
        tested = tests.get(node["name"], {})
        keys = [c for c, names in tested.items() if {"unique", "not_null"} <= names]
        key = node.get("primary_key") or keys[:1]
        key_tested = bool(keys)
        if len(key) > 1:  # a composite key is tested as a whole: unique together, each part not null
            key_tested = any(c in keys for c in key) or (
                set(key) in combinations.get(node["name"], []) and all("not_null" in tested.get(c, set()) for c in key)
            )
        facts[node["name"]] = {
            "layer": spec.dbt_models[node["name"]].layer if node["name"] in spec.dbt_models else None,
            "key": key,
            "key_tested": key_tested,
        }
    names = {uid: node["name"] for uid, node in by_id.items() if node["name"] in spec.dbt_models}
    exposures = {
        e["name"]: {names[n] for n in e.get("depends_on", {}).get("nodes", []) if n in names}
        for e in manifest.get("exposures", {}).values()
        if e.get("original_file_path", "").startswith(models_path(spec.name))
    }
    return facts, exposures


def _column_deps(lineage: dg.TableColumnLineage) -> dict[str, list[tuple[str, str]]]:
    return {
        column: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
        for column, deps in lineage.deps_by_column.items()
    }


def _history(instance: dg.DagsterInstance, node: AssetNode, asset_key: dg.AssetKey) -> None:
    event = instance.get_latest_materialization_event(asset_key)
    if event is not None and event.asset_materialization is not None:
        node.last_materialized = event.timestamp
        node.metadata = metadata_values(event.asset_materialization.metadata)
    if node.role == "model":
        for record in instance.fetch_materializations(asset_key, limit=20).records:
            materialization = record.asset_materialization
            if materialization is None:
                continue
            run = instance.get_run_by_id(record.run_id)
            node.history.append(
                {
                    "run_id": record.run_id,
                    "timestamp": record.timestamp,
                    "metadata": metadata_values(materialization.metadata),
                    "run_assets": sorted(k.to_user_string() for k in (run.asset_selection or ())) if run else [],
                }
            )
    for check in node.checks:
        records = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(asset_key, check.name), limit=50
        )
        runs = [
            CheckRun(
                r.create_timestamp,
                r.evaluation.passed,
                r.evaluation.severity.value,
                r.evaluation.description or "",
                r.run_id,
            )
            for r in records
            if isinstance(r.evaluation, dg.AssetCheckEvaluation)
        ]
        if runs:
            node.check_history[check.name] = runs
    if node.role in ("model", "predictions") and node.step is not None:
        node.step_runs = _step_runs(instance, asset_key, node.step)


STEP_RUNS_READ = 100  # materializations read back for step durations (a range run writes one per day)


def _rows(metadata: dict[str, Any]) -> int | None:
    """Rows a run's step handled: a model's training and test rows, else the run's window or the table."""
    if "train_rows" in metadata:
        return int(metadata["train_rows"]) + int(metadata.get("test_rows", 0))
    rows = metadata.get(WINDOW_ROWS, metadata.get("dagster/row_count"))
    return int(rows) if rows is not None else None


def _step_runs(instance: dg.DagsterInstance, asset_key: dg.AssetKey, step: str) -> list[StepRun]:
    """The step's duration in each recent run that materialized the asset (from Dagster's step
    stats), with the rows it handled, newest first; runless records (a rollback) have no step."""
    runs: dict[str, StepRun] = {}
    for record in instance.fetch_materializations(asset_key, limit=STEP_RUNS_READ).records:
        if record.run_id in runs or not record.run_id or record.asset_materialization is None:
            continue
        stats = instance.get_run_step_stats(record.run_id, step_keys=[step])
        timed = [s for s in stats if s.start_time is not None and s.end_time is not None]
        if not timed:
            continue
        seconds = sum(s.end_time - s.start_time for s in timed)  # type: ignore[operator]
        rows = _rows(metadata_values(record.asset_materialization.metadata))
        runs[record.run_id] = StepRun(record.run_id, record.timestamp, seconds, rows)
    return sorted(runs.values(), key=lambda r: -r.timestamp)


def build_graph(
    spec: FactorySpec,
    assets: dg.Definitions | Any,
    instance: dg.DagsterInstance | None = None,
    suites: dict[str, Suite] | None = None,
    now: float | None = None,
) -> FactoryGraph:
    """The factory graph of a line; with an instance, last materializations and check results too.

    `assets`: the Definitions, or an asset graph (e.g. `context.repository_def.asset_graph`).
    """
    graph = assets.resolve_asset_graph() if isinstance(assets, dg.Definitions) else assets
    dbt, exposures = _dbt_facts(spec)
    suites = suites or {}
    nodes: dict[str, AssetNode] = {}
    for asset_key in graph.materializable_asset_keys:
        a = graph.get(asset_key)
        if a.tags.get(LINE_TAG) != spec.name:  # another line's asset, or a governance report
            continue
        key = asset_key.to_user_string()
        schema = a.metadata.get("dagster/column_schema")
        node = AssetNode(
            key=key,
            role=_role(spec, key, a.group_name),
            group=a.group_name,
            owners=list(a.owners),
            description=(a.description or "").strip(),
            kinds=set(a.kinds),
            tags=dict(a.tags),
            code_version=a.code_version,
            parents={p.to_user_string() for p in a.parent_keys},
            children={c.to_user_string() for c in a.child_keys},
            columns=[c.name for c in getattr(schema, "schema", schema).columns] if schema is not None else [],
            partitioned=a.partitions_def is not None,
            freshness=a.freshness_policy is not None,
            automation=a.automation_condition is not None,
            suite=suites.get(key),
            step=a.assets_def.node_def.name if a.assets_def is not None else None,
        )
        for check_key in sorted(a.check_keys, key=lambda k: k.name):
            check_spec = graph.get_check_spec(check_key)
            if (check_spec.metadata or {}).get(GOVERNANCE_CHECK):
                continue
            node.checks.append(CheckInfo(check_key.name, check_spec.blocking, _check_kind(check_key.name, check_spec)))
        node.drift_gate = bool(node.suite and any(e.type in DISTRIBUTION_EXPECTATIONS for e in node.suite.expectations))
        if node.role == "data_product" and key in dbt:
            node.layer = dbt[key]["layer"]
            node.declared_key = dbt[key]["key"] or []
            node.key_tested = dbt[key]["key_tested"]
        elif (product := spec.product_of_key(key)) is not None:
            kind, name = product
            node.declared_key = kind.row_key(spec, name)
            if not node.columns and kind.table:
                node.columns = list(kind.columns(spec, name) or [])
        if not node.key_tested:
            node.key_tested = _suite_key_tested(node.suite, node.declared_key)
        if instance is not None:
            _history(instance, node, asset_key)
        recorded = node.metadata.get("dagster/column_lineage") or a.metadata.get("dagster/column_lineage")
        if recorded is not None:
            node.column_lineage = _column_deps(getattr(recorded, "value", recorded))
        if not node.columns and isinstance(node.metadata.get("dagster/column_schema"), dg.TableSchema):
            node.columns = [c.name for c in node.metadata["dagster/column_schema"].columns]
        nodes[key] = node
    return FactoryGraph(
        spec,
        nodes,
        exposures,
        now if now is not None else dt.datetime.now(dt.UTC).timestamp(),
        has_history=instance is not None,
    )
