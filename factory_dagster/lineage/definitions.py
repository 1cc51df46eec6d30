"""What lineage adds to the code location: the governance assets and the OpenLineage sensors."""

from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from factory_dagster.compat import AssetGraph
from factory_dagster.gates.gate import Gate
from factory_dagster.lineage.assess import Assessment, assess
from factory_dagster.lineage.checks import DEBT_CHECK, SCORE_CHECK, build_debt_checks, line_assets, outcomes
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
from factory_dagster.storage.home import FactoryHome

DEBT_ASSET = "technical_debt_report"
SCORE_ASSET = "ml_test_score"


def line_reports(home: FactoryHome, line: str) -> Path:
    """Where a line's debt report goes: reports/<line>/ (debt.html, debt.json)."""
    return home.reports / line


def build_governance_assets(
    specs: list[FactorySpec], gates: dict[str, dict[str, Gate]], graph: AssetGraph
) -> tuple[list[dg.AssetsDefinition], list[dg.AssetChecksDefinition]]:
    """Two assets that read the whole graph, line by line: the debt report and the ML Test Score,
    and the checks that show their findings on each asset (`technical_debt`, `ml_test_score`).

    The assets have no dependencies on purpose: they judge the graph, they are not part of it.
    Materializing them also evaluates every asset's check of theirs. `gates`: each line's gates
    by asset key; `graph`: every asset and check of the factory.
    """
    owners = sorted({m.owner for s in specs for m in s.models.values()} or {"team:data-platform"})
    lines = line_assets(specs, graph)

    def line_assessment(context: AssetExecutionContext | dg.AssetCheckExecutionContext, spec: FactorySpec):
        return assess(spec, graph, context.instance, {k: g.suite for k, g in gates[spec.name].items()})

    def current(context: AssetExecutionContext, factory: FactoryResource, check: str) -> dict[str, Assessment]:
        """Every line's assessment, written as its report; the line's `check` evaluated on its assets."""
        home = factory.paths
        results = {}
        for spec in specs:
            result = line_assessment(context, spec)
            write_html(line_reports(home, spec.name) / "debt.html", result.graph, result.debt, result.scores)
            write_json(line_reports(home, spec.name) / "debt.json", result.debt, result.scores)
            for outcome in outcomes(result, lines[spec.name], check):
                # log_event records an AssetCheckEvaluation in this run (its annotation omits the type).
                context.log_event(outcome.evaluation())  # pyright: ignore[reportArgumentType]
            results[spec.name] = result
        return results

    @dg.asset(
        name=DEBT_ASSET,
        group_name=REPORT_GROUP,
        owners=owners,
        kinds={"python"},
        description="Technical debt found in the lineage of every line (debt rules TD01-TD23 with each "
        "line's thresholds and reasoned exceptions); also written as `reports/<line>/debt.html`.",
    )
    def debt_report(context: AssetExecutionContext, factory: FactoryResource) -> dg.MaterializeResult:
        results = current(context, factory, DEBT_CHECK)
        counts = {
            severity: sum(r.debt.counts()[severity] for r in results.values())
            for severity in next(iter(results.values())).debt.counts()
        }
        findings = "\n\n".join(f"**line {line}**\n\n{findings_markdown(r.debt)}" for line, r in results.items())
        return dg.MaterializeResult(
            metadata={
                "findings": dg.MetadataValue.md(findings),
                "debt_score": dg.MetadataValue.int(sum(r.debt.score for r in results.values())),
                **{f"{severity}_findings": dg.MetadataValue.int(n) for severity, n in counts.items()},
                "accepted_by_exceptions": dg.MetadataValue.int(sum(len(r.debt.excepted) for r in results.values())),
                "lines": dg.MetadataValue.json(
                    {line: {"debt_score": r.debt.score, **r.debt.counts()} for line, r in results.items()}
                ),
                **{
                    f"html_report/{line}": dg.MetadataValue.path(str(line_reports(factory.paths, line) / "debt.html"))
                    for line in results
                },
            }
        )

    @dg.asset(
        name=SCORE_ASSET,
        group_name=REPORT_GROUP,
        owners=owners,
        kinds={"python"},
        description="The ML Test Score (Breck et al. 2017) of every model of every line, with the "
        "evidence of each of the 28 tests.",
    )
    def ml_test_score(context: AssetExecutionContext, factory: FactoryResource) -> dg.MaterializeResult:
        metadata: dict[str, Any] = {}
        for result in current(context, factory, SCORE_CHECK).values():
            for score in result.scores:
                metadata[f"{score.model}/score"] = dg.MetadataValue.float(score.score)
                metadata[f"{score.model}/band"] = score.band
                metadata[f"{score.model}/sections"] = dg.MetadataValue.json({s: score.section(s) for s in SECTIONS})
                metadata[f"{score.model}/tests"] = dg.MetadataValue.md(score_markdown(score))
        return dg.MaterializeResult(metadata=metadata)

    return [debt_report, ml_test_score], [build_debt_checks(specs, graph, line_assessment)]


def build_openlineage_sensors(specs: list[FactorySpec]) -> list[dg.SensorDefinition]:
    """Runs launched by the daemon or the UI emit their OpenLineage events when they end, each
    line's assets under its line's OpenLineage settings."""
    emitting = [spec for spec in specs if spec.line.openlineage.enabled]
    if not emitting:
        return []

    def emit(context, factory: FactoryResource) -> None:
        for spec in emitting:
            sent = emit_run(
                spec, context.repository_def.asset_graph, factory.paths, context.instance, context.dagster_run.run_id
            )
            if sent:
                context.log.info(f"OpenLineage: {sent} events of line {spec.name} for run {context.dagster_run.run_id}")

    @dg.run_status_sensor(
        name="openlineage_on_success",
        run_status=dg.DagsterRunStatus.SUCCESS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Emits the OpenLineage START/COMPLETE events of every finished run.",
    )
    def on_success(context: dg.RunStatusSensorContext, factory: FactoryResource) -> None:
        emit(context, factory)

    @dg.run_failure_sensor(
        name="openlineage_on_failure",
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Emits the OpenLineage START/FAIL events of every failed run.",
    )
    def on_failure(context: dg.RunFailureSensorContext, factory: FactoryResource) -> None:
        emit(context, factory)

    return [on_success, on_failure]
