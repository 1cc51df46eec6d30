"""Documentation debt the graph alone cannot show: dbt docs that say something the SQL does not do."""

from __future__ import annotations

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import FactoryGraph
from factory_dagster.lineage.rules import Finding, Rule, rule
from factory_dagster.spec.debt import DebtThresholds


@rule(
    "TD21D",
    "Documented columns drift from the SQL",
    "medium",
    "A dbt model whose documented columns differ from those its compiled SQL produces.",
)
def documentation_drift(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    # dbt-project-evaluator compares docs with the project's YAML only; the compiled SQL is what runs.
    findings = []
    for name, model in sorted(graph.spec.dbt_models.items()):
        drift = model.drift(graph.spec.root.dbt_project_dir)
        if drift is not None and name in graph.nodes:
            findings.append(
                r.finding(
                    [name],
                    drift,
                    "document the columns the SQL produces (data_type and tests too), or make the SQL produce "
                    "the documented ones",
                    [*model.not_produced, *model.undocumented],
                )
            )
    return findings
