"""What lineage adds to the code location: the governance assets and the OpenLineage sensors."""

import dagster as dg
from dagster import AssetExecutionContext
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from factory_dagster.gates.gate import Gate
from factory_dagster.lineage.assess import assess
from factory_dagster.lineage.graph import REPORT_GROUP
from factory_dagster.lineage.ml_test_score import SECTIONS
from factory_dagster.lineage.openlineage import emit_run
from factory_dagster.lineage.report import (
    findings_markdown,
    score_markdown,
    write_html,
    write_json,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec

DEBT_ASSET = "technical_debt_report"
SCORE_ASSET = "ml_test_score"


def build_governance_assets(spec: FactorySpec, gates: dict[str, Gate],
                            line_assets: list[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """Two assets that read the whole graph: the debt report and the ML Test Score.

    They have no dependencies on purpose: they judge the graph, they are not part of it.
    `line_assets`: every asset and check of the line, which they judge.
    """
    owners = sorted({s.owner for s in spec.models.values()} or {"team:data-platform"})
    suites = {k: g.suite for k, g in gates.items()}
    graph = AssetGraph.from_assets(line_assets)

    def current(context: AssetExecutionContext, factory: FactoryResource):
        result = assess(spec, graph, context.instance, suites)
        home = factory.paths
        write_html(home.reports / "debt.html", result.graph, result.debt, result.scores)
        write_json(home.reports / "debt.json", result.debt, result.scores)
        return result, home

    @dg.asset(name=DEBT_ASSET, group_name=REPORT_GROUP, owners=owners, kinds={"python"},
              description="Technical debt found in the lineage (debt rules TD01-TD23 with the spec's "
                          "thresholds and reasoned exceptions); also written as reports/debt.html.")
    def debt_report(context: AssetExecutionContext, factory: FactoryResource) -> dg.MaterializeResult:
        result, home = current(context, factory)
        counts = result.debt.counts()
        return dg.MaterializeResult(metadata={
            "findings": dg.MetadataValue.md(findings_markdown(result.debt)),
            "debt_score": dg.MetadataValue.int(result.debt.score),
            **{f"{severity}_findings": dg.MetadataValue.int(n) for severity, n in counts.items()},
            "accepted_by_exceptions": dg.MetadataValue.int(len(result.debt.excepted)),
            "html_report": dg.MetadataValue.path(str(home.reports / "debt.html")),
        })

    @dg.asset(name=SCORE_ASSET, group_name=REPORT_GROUP, owners=owners, kinds={"python"},
              description="The ML Test Score (Breck et al. 2017) of every model, with the evidence of each "
                          "of the 28 tests.")
    def ml_test_score(context: AssetExecutionContext, factory: FactoryResource) -> dg.MaterializeResult:
        result, _ = current(context, factory)
        metadata: dict[str, object] = {}
        for score in result.scores:
            metadata[f"{score.model}/score"] = dg.MetadataValue.float(score.score)
            metadata[f"{score.model}/band"] = score.band
            metadata[f"{score.model}/sections"] = dg.MetadataValue.json({s: score.section(s) for s in SECTIONS})
            metadata[f"{score.model}/tests"] = dg.MetadataValue.md(score_markdown(score))
        return dg.MaterializeResult(metadata=metadata)

    return [debt_report, ml_test_score]


def build_openlineage_sensors(spec: FactorySpec) -> list[dg.SensorDefinition]:
    """Runs launched by the daemon or the UI emit their OpenLineage events when they end."""
    if not spec.line.openlineage.enabled:
        return []

    def emit(context, factory: FactoryResource) -> None:
        sent = emit_run(spec, context.repository_def.asset_graph, factory.paths, context.instance,
                        context.dagster_run.run_id)
        context.log.info(f"OpenLineage: {sent} events for run {context.dagster_run.run_id}")

    @dg.run_status_sensor(name="openlineage_on_success", run_status=dg.DagsterRunStatus.SUCCESS,
                          default_status=dg.DefaultSensorStatus.RUNNING,
                          description="Emits the OpenLineage START/COMPLETE events of every finished run.")
    def on_success(context: dg.RunStatusSensorContext, factory: FactoryResource) -> None:
        emit(context, factory)

    @dg.run_failure_sensor(name="openlineage_on_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                           description="Emits the OpenLineage START/FAIL events of every failed run.")
    def on_failure(context: dg.RunFailureSensorContext, factory: FactoryResource) -> None:
        emit(context, factory)

    return [on_success, on_failure]
