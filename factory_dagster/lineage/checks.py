"""Debt on the asset graph: a `technical_debt` check on every asset of a line and an `ml_test_score`
check on every model, read from the line's assessment (the one debt engine, `assess`).

The checks never block: debt is a finding to fix, not a reason to stop a build. High findings
fail the check with severity ERROR, medium and low ones with WARN. They are evaluated when their
asset is materialized (a check op run after it) and whenever the governance reports are.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
from dagster import AssetCheckExecutionContext

from factory_dagster.compat import AssetGraph
from factory_dagster.lineage.assess import Assessment
from factory_dagster.lineage.debt import DebtReport
from factory_dagster.lineage.graph import GOVERNANCE_CHECK, REPORT_GROUP
from factory_dagster.lineage.ml_test_score import ModelScore
from factory_dagster.lineage.report import findings_markdown, score_markdown
from factory_dagster.markdown import markdown_table
from factory_dagster.products.kind import LINE_TAG
from factory_dagster.spec import FactorySpec

DEBT_CHECK = "technical_debt"
SCORE_CHECK = "ml_test_score"
GOVERNANCE_CHECKS = frozenset({DEBT_CHECK, SCORE_CHECK})
# The ML Test Score a model needs for its check to pass: above the paper's "serious holes in
# reliability possible" band (Breck et al. 2017); 0 ("more of a research project") is an error.
SCORE_PASSES_ABOVE = 1.0

Assess = Callable[[AssetCheckExecutionContext, FactorySpec], Assessment]


@dataclass(frozen=True)
class Outcome:
    """One check's evaluation, in the two shapes Dagster takes it: yielded by the check op, or
    logged by a governance asset's step."""

    key: dg.AssetCheckKey
    passed: bool
    severity: dg.AssetCheckSeverity
    description: str
    metadata: dict[str, Any]

    def result(self) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            asset_key=self.key.asset_key,
            check_name=self.key.name,
            passed=self.passed,
            severity=self.severity,
            description=self.description,
            metadata=self.metadata,
        )

    def evaluation(self) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=self.key.asset_key,
            check_name=self.key.name,
            passed=self.passed,
            severity=self.severity,
            description=self.description,
            metadata=self.metadata,
            blocking=False,
        )


def line_assets(specs: list[FactorySpec], graph: AssetGraph) -> dict[str, list[dg.AssetKey]]:
    """Each line's assets (by the line tag every product carries), the governance reports aside."""
    lines: dict[str, list[dg.AssetKey]] = {spec.name: [] for spec in specs}
    for key in sorted(graph.materializable_asset_keys):
        node = graph.get(key)
        line = node.tags.get(LINE_TAG)
        if line in lines and node.group_name != REPORT_GROUP:
            lines[line].append(key)
    return lines


def check_specs(specs: list[FactorySpec], graph: AssetGraph) -> list[dg.AssetCheckSpec]:
    """A `technical_debt` check on every asset of every line, an `ml_test_score` one on every model."""
    found = []
    for spec in specs:
        for key in line_assets(specs, graph)[spec.name]:
            found.append(
                dg.AssetCheckSpec(
                    DEBT_CHECK,
                    asset=key,
                    blocking=False,
                    metadata={GOVERNANCE_CHECK: True},
                    description="Technical debt the lineage shows on this asset (debt rules TD01-TD23, "
                    f"line {spec.name}'s thresholds and exceptions): WARN for medium and low findings, "
                    "ERROR for high ones; never blocks.",
                )
            )
            if key.to_user_string() in spec.models:
                found.append(
                    dg.AssetCheckSpec(
                        SCORE_CHECK,
                        asset=key,
                        blocking=False,
                        metadata={GOVERNANCE_CHECK: True},
                        description="The model's ML Test Score (Breck et al. 2017): passes above "
                        f"{SCORE_PASSES_ABOVE:g}; never blocks.",
                    )
                )
    return found


def debt_outcome(result: Assessment, key: dg.AssetKey) -> Outcome:
    """The `technical_debt` check of one asset: its active findings, and those an exception accepts."""
    name = key.to_user_string()
    active = result.debt.for_asset(name)
    excepted = [f for f in result.debt.excepted if name in f.assets]
    high = [f for f in active if f.severity == "high"]
    if active:
        rules = ", ".join(dict.fromkeys(f"{f.rule} ({f.severity})" for f in active))
        description = f"{len(active)} debt finding{'s' if len(active) > 1 else ''}: {rules}"
    else:
        description = "no debt found" + (f" ({len(excepted)} accepted by exceptions)" if excepted else "")
    metadata: dict[str, Any] = {
        "findings": dg.MetadataValue.md(findings_markdown(DebtReport(active))),
        "findings_json": dg.MetadataValue.json([f.to_json() for f in active]),
        "high": dg.MetadataValue.int(len(high)),
        "medium": dg.MetadataValue.int(sum(1 for f in active if f.severity == "medium")),
        "low": dg.MetadataValue.int(sum(1 for f in active if f.severity == "low")),
    }
    if excepted:
        metadata["accepted_by_exceptions"] = dg.MetadataValue.md(
            markdown_table(
                ["rule", "assets", "evidence", "exception's reason"],
                [(f"{f.rule} {f.name}", ", ".join(f.assets), f.evidence, f.excepted_by or "") for f in excepted],
            )
        )
    return Outcome(
        dg.AssetCheckKey(key, DEBT_CHECK),
        passed=not active,
        severity=dg.AssetCheckSeverity.ERROR if high else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata=metadata,
    )


def score_outcome(score: ModelScore) -> Outcome:
    """The `ml_test_score` check of one model."""
    return Outcome(
        dg.AssetCheckKey(dg.AssetKey.from_user_string(score.model), SCORE_CHECK),
        passed=score.score > SCORE_PASSES_ABOVE,
        severity=dg.AssetCheckSeverity.ERROR if score.score <= 0 else dg.AssetCheckSeverity.WARN,
        description=f"ML Test Score {score.score:g} ({score.band})",
        metadata={
            "score": dg.MetadataValue.float(score.score),
            "band": dg.MetadataValue.text(score.band),
            "tests": dg.MetadataValue.md(score_markdown(score)),
        },
    )


def outcomes(result: Assessment, keys: list[dg.AssetKey], check: str) -> Iterator[Outcome]:
    """The outcomes of one line's `check` (DEBT_CHECK or SCORE_CHECK) on `keys`."""
    if check == DEBT_CHECK:
        yield from (debt_outcome(result, key) for key in keys)
    else:
        wanted = {key.to_user_string() for key in keys}
        yield from (score_outcome(score) for score in result.scores if score.model in wanted)


def build_debt_checks(specs: list[FactorySpec], graph: AssetGraph, assess: Assess) -> dg.AssetChecksDefinition:
    """One check op for every line's debt checks; a run evaluates those of the assets it selects,
    after them, assessing only the lines they belong to."""
    lines = line_assets(specs, graph)
    by_name = {spec.name: spec for spec in specs}
    line_of = {key: line for line, keys in lines.items() for key in keys}

    @dg.multi_asset_check(
        name="technical_debt_checks",
        specs=check_specs(specs, graph),
        can_subset=True,
        description="Technical debt and the ML Test Score on each asset, from the lineage of its line.",
    )
    def technical_debt_checks(context: AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        selected: dict[str, dict[str, list[dg.AssetKey]]] = {}
        for check_key in sorted(context.selected_asset_check_keys, key=lambda k: k.to_user_string()):
            line = line_of[check_key.asset_key]
            selected.setdefault(line, {}).setdefault(check_key.name, []).append(check_key.asset_key)
        for line, checks in selected.items():
            try:
                result = assess(context, by_name[line])
            except Exception as exc:  # debt never stops a build: a failed assessment is a WARN, not a failed run
                context.log.exception(f"assessing the debt of line {line} failed")
                for check, keys in checks.items():
                    for key in keys:
                        yield dg.AssetCheckResult(
                            asset_key=key,
                            check_name=check,
                            passed=False,
                            severity=dg.AssetCheckSeverity.WARN,
                            description=f"the debt assessment of line {line} failed: {type(exc).__name__}: {exc}",
                        )
                continue
            for check, keys in checks.items():
                for outcome in outcomes(result, keys, check):
                    yield outcome.result()

    return technical_debt_checks
