"""The debt report: every rule over the graph, minus reasoned exceptions, with a score."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import FactoryGraph
from factory_dagster.lineage.rules import WEIGHTS, Finding, all_rules
from factory_dagster.spec import FactorySpec, SpecError
from factory_dagster.spec.debt import check_exception_rules
from factory_dagster.spec.loader import raise_all

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


@dataclass
class DebtReport:
    findings: list[Finding]  # active
    excepted: list[Finding] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(WEIGHTS[f.severity] for f in self.findings)

    def counts(self) -> dict[str, int]:
        return {s: sum(1 for f in self.findings if f.severity == s) for s in ("high", "medium", "low")}

    def at_least(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if SEVERITY_ORDER[f.severity] <= SEVERITY_ORDER[severity]]

    def for_asset(self, key: str) -> list[Finding]:
        return [f for f in self.findings if key in f.assets]

    def to_json(self) -> dict[str, object]:
        return {
            "score": self.score,
            "counts": self.counts(),
            "findings": [f.to_json() for f in self.findings],
            "excepted": [f.to_json() for f in self.excepted],
        }


def check_exceptions(spec: FactorySpec) -> None:
    """Every exception names a known rule (its reason is required by the spec model)."""
    raise_all(check_exception_rules(spec, all_rules()))


def evaluate(graph: FactoryGraph) -> DebtReport:
    spec = graph.spec
    check_exceptions(spec)
    columns = ColumnGraph.of(graph)
    found: list[Finding] = []
    for rule in all_rules().values():
        found += rule.check(graph, columns, spec.debt.thresholds)
    report = DebtReport([])
    for finding in found:
        reason = next(
            (
                e.reason
                for e in spec.debt.exceptions
                if e.rule in ("*", finding.rule) and fnmatchcase(finding.assets[0], e.assets)
            ),
            None,
        )
        if reason is None:
            report.findings.append(finding)
        else:
            finding.excepted_by = reason
            report.excepted.append(finding)
    report.findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.rule, f.assets))
    return report


__all__ = ["DebtReport", "SpecError", "check_exceptions", "evaluate"]
