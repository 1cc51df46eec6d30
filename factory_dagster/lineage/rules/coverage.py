"""Coverage debt: what nothing uses, what nothing checks, what nobody owns or explains."""

from __future__ import annotations

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import AssetNode, FactoryGraph
from factory_dagster.lineage.rules import Finding, Rule, rule
from factory_dagster.products.model import model_inputs
from factory_dagster.spec.debt import DebtThresholds
from factory_dagster.storage.home import asset_slug

CHECKED_ROLES = ("source", "data_product", "feature_set", "predictions")


def _consumers(graph: FactoryGraph) -> set[str]:
    return {n.key for n in graph.of_role("model")} | graph.exposed()


@rule(
    "TD05",
    "Unused data dependency",
    "medium",
    "A source, data product or feature set with no path to any model or exposed product.",
)
def unused_dependency(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    consumers = _consumers(graph)
    findings = []
    for node in graph.of_role("source", "data_product", "feature_set"):
        if node.key in consumers or graph.downstream(node.key) & consumers:
            continue
        findings.append(
            r.finding(
                [node.key],
                f"{node.key} feeds no model and no exposure (children: {', '.join(sorted(node.children)) or 'none'})",
                "delete it, or declare its consumer (a dbt exposure, a model input)",
            )
        )
    return findings


@rule(
    "TD05C",
    "Unused columns",
    "low",
    "Columns of an intermediate or mart model that reach no model input and no exposed product.",
)
def unused_columns(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    consumers = _consumers(graph)
    findings = []
    for node in graph.of_role("data_product"):
        if node.layer in (None, "staging") or node.key in consumers or not node.columns:
            continue
        if not all(columns.known(child) for child in node.children if child in graph.nodes):
            continue  # a child's column lineage is not recorded yet: no verdict
        unused = [c for c in node.columns if not columns.reaches((node.key, c), consumers)]
        if unused:
            findings.append(
                r.finding(
                    [node.key],
                    f"{len(unused)} of {len(node.columns)} columns of {node.key} reach no consumer",
                    "stop selecting them, or expose the model to the readers who need them",
                    unused,
                )
            )
    return findings


@rule(
    "TD05F",
    "Unused feature columns",
    "medium",
    "Features a feature set computes that no model consumes (or a label no model predicts).",
)
def unused_features(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    spec = graph.spec
    findings = []
    for name, fs in spec.feature_sets.items():
        used: set[str] = set()
        labels: set[str] = set()
        if not any(name in m.features for m in spec.models.values()):
            continue  # a feature set no model reads at all is TD05's finding
        for model in spec.models.values():
            if name not in model.features:
                continue
            used |= {column for column, source in model_inputs(spec, model).items() if source == name}
            labels.add(model.target.column)
        unused = [f for f in fs.output_features() if f not in used] + [lb for lb in fs.labels if lb not in labels]
        if unused:
            findings.append(
                r.finding(
                    [name],
                    f"{name} builds {', '.join(unused)}, which no model uses",
                    "remove the features from the spec, or use them in a model",
                    unused,
                )
            )
    return findings


@rule("TD19", "Missing gate", "high", "A data product, feature set or predictions asset without any blocking check.")
def missing_gate(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    return [
        r.finding(
            [n.key],
            f"{n.key} has {len(n.checks)} check(s), none blocking",
            f"add a GX suite ({asset_slug(n.key)}.json in the suites folder) or error-severity dbt tests",
        )
        for n in graph.of_role(*CHECKED_ROLES)
        if not n.gated
    ]


@rule(
    "TD19K",
    "Untested key",
    "high",
    "A keyed table whose key (as a whole, when composite) is not tested unique and not null.",
)
def untested_key(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.of_role(*CHECKED_ROLES):
        if n.declared_key is None or n.key_tested:
            continue
        key = ", ".join(n.declared_key) if n.declared_key else "no column"
        if len(n.declared_key) > 1:  # the key as a whole: its columns may repeat one by one
            fix = (
                f"test the whole key: expect_compound_columns_to_be_unique on [{key}] and "
                "expect_column_values_to_not_be_null on each column (GX suite), or "
                "dbt_utils.unique_combination_of_columns and not_null tests (dbt)"
            )
        else:
            fix = "add unique and not_null tests on the key (dbt) or expectations (GX suite)"
        findings.append(
            r.finding([n.key], f"key of {n.key} ({key}) has no unique + not-null test", fix, list(n.declared_key))
        )
    return findings


@rule(
    "TD19M", "Ungated model input", "high", "A model whose upstream closure contains an asset without a blocking check."
)
def ungated_model_input(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for model in graph.of_role("model"):
        ungated = sorted(
            k for k in graph.upstream(model.key) if graph.nodes[k].role != "report" and not graph.nodes[k].gated
        )
        if ungated:
            findings.append(
                r.finding(
                    [model.key, *ungated],
                    f"{model.key} trains on ungated {', '.join(ungated)}",
                    "gate every upstream asset with a blocking check",
                )
            )
    return findings


def _undocumented(node: AssetNode) -> bool:
    text = node.description.strip()
    return not text or text.startswith(f"dbt model {node.key}")  # dagster-dbt's placeholder


@rule("TD21", "No owner or description", "medium", "An asset without owners or without a description.")
def process_debt(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.nodes.values():
        missing = [label for label, absent in (("owner", not n.owners), ("description", _undocumented(n))) if absent]
        if missing:
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key} has no {' and no '.join(missing)}",
                    "declare owner and description in the spec (or the dbt YAML)",
                )
            )
    return findings
