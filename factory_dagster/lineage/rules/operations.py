"""Operational debt, read from the instance's history and the models' records."""

from __future__ import annotations

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import PIPELINE_ROLES, FactoryGraph
from factory_dagster.lineage.rules import Finding, Rule, rule
from factory_dagster.spec.debt import DebtThresholds

DAY = 86400.0
REPRODUCIBILITY_RECORD = {
    "seed": "seed",
    "training_data_sha256": "training-data hash",
    "library_versions": "library versions",
}


@rule(
    "TD13",
    "Dead or stale path",
    "medium",
    "An asset never materialized, not materialized for too long, or experimental with no reader.",
)
def dead_paths(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.of_role(*PIPELINE_ROLES):
        if not graph.has_history:
            pass  # no instance: no evidence about materializations either way
        elif n.last_materialized is None:
            findings.append(
                r.finding([n.key], f"{n.key} was never materialized", "materialize it, or delete it if nobody needs it")
            )
        elif graph.now - n.last_materialized > t.stale_after_days * DAY:
            days = (graph.now - n.last_materialized) / DAY
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key} was last materialized {days:.0f} days ago (stale after {t.stale_after_days})",
                    "schedule it, or retire it",
                )
            )
        if (n.tags.get("stage") == "experimental" or "experimental" in n.tags) and not n.children:
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key} is tagged experimental and nothing reads it",
                    "promote it into a product, or delete it",
                )
            )
    return findings


@rule(
    "TD20",
    "Reproducibility debt",
    "medium",
    "A model without a seed, a training-data hash, a code version or library versions recorded.",
)
def reproducibility(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for model in graph.of_role("model"):
        missing = []
        if graph.spec.models[model.key].seed is None:
            missing.append("seed (spec)")
        if not model.code_version:
            missing.append("code version")
        if model.last_materialized is not None:
            for key, label in REPRODUCIBILITY_RECORD.items():
                if model.metadata.get(key) in (None, "", "none", {}):
                    missing.append(f"{label} (last training)")
        if missing:
            findings.append(
                r.finding(
                    [model.key],
                    f"{model.key} lacks {', '.join(missing)}",
                    "set `seed:` in the model spec; retrain so the record is written",
                )
            )
    return findings


@rule(
    "TD18",
    "Monitoring gap",
    "high",
    "A model or predictions asset without a freshness policy or without a drift gate or drift monitor.",
)
def monitoring_gap(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.of_role("model", "predictions"):
        gaps = [] if n.freshness else ["no freshness policy"]
        if n.role == "model":
            inputs = [p for p in n.parents if p in graph.nodes and graph.nodes[p].role == "feature_set"]
            # a drift monitor on its predictions compares the inputs it scores with its training reference
            monitored = any(graph.nodes[c].check_of("drift") for c in n.children if c in graph.nodes)
            if not monitored and not any(graph.nodes[p].drift_gate for p in inputs):
                gaps.append(f"no drift gate on its inputs ({', '.join(sorted(inputs)) or 'none'}) and no drift monitor")
        elif not n.drift_gate and not n.check_of("drift"):
            gaps.append("no drift gate or drift monitor on its scores")
        if gaps:
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key}: {'; '.join(gaps)}",
                    "declare `freshness:` in the spec; keep the model's drift monitor on (`monitor.drift`), "
                    "or bound distributions (mean, quantiles) in the GX suite so drift fails or warns the gate",
                )
            )
    return findings


@rule("TD23", "Long-failing check", "medium", "A check that has stayed failed longer than the threshold.")
def long_failing_checks(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.nodes.values():
        for name, runs in n.check_history.items():
            if not runs or runs[0].passed:
                continue
            first_failure = runs[0].timestamp
            for run in runs:
                if run.passed:
                    break
                first_failure = run.timestamp
            days = (graph.now - first_failure) / DAY
            if days >= t.failing_check_days:
                findings.append(
                    r.finding(
                        [n.key],
                        f"check {name} on {n.key} has failed ({runs[0].severity}) for {days:.1f} days",
                        "fix the data or the expectation; a check everyone ignores is noise",
                    )
                )
    return findings
