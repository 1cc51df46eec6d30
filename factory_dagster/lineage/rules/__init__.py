"""Debt rules: each reads the factory graph and returns findings (rule, assets, evidence, fix).

Rule ids follow the debt catalogue of Sculley et al. 2015 ("Hidden Technical Debt in Machine
Learning Systems") extended with dbt-project-evaluator's checks; the README lists them.
Severity weights: high 3, medium 2, low 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import FactoryGraph
from factory_dagster.spec.debt import DebtThresholds

Severity = Literal["high", "medium", "low"]
WEIGHTS: dict[str, int] = {"high": 3, "medium": 2, "low": 1}


@dataclass
class Finding:
    rule: str
    name: str
    severity: Severity
    assets: list[str]
    evidence: str
    fix: str
    columns: list[str] = field(default_factory=list)
    excepted_by: str | None = None  # the reason of the exception that accepts this finding

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    check: Callable[[FactoryGraph, ColumnGraph, DebtThresholds], list[Finding]]
    describes: str

    def finding(self, assets: list[str], evidence: str, fix: str, columns: list[str] | None = None) -> Finding:
        """`assets[0]` is the subject (what an exception matches); the rest are involved."""
        return Finding(
            self.id, self.name, self.severity, list(dict.fromkeys(assets)), evidence, fix, sorted(columns or [])
        )


RULES: dict[str, Rule] = {}


def rule(rule_id: str, name: str, severity: Severity, describes: str):
    """Register a rule function under an id."""

    def register(check: Callable[[Rule, FactoryGraph, ColumnGraph, DebtThresholds], list[Finding]]):
        def bound(graph: FactoryGraph, columns: ColumnGraph, thresholds: DebtThresholds) -> list[Finding]:
            return check(RULES[rule_id], graph, columns, thresholds)

        RULES[rule_id] = Rule(rule_id, name, severity, bound, describes)
        return check

    return register


def all_rules() -> dict[str, Rule]:
    from factory_dagster.lineage.rules import coverage, documentation, operations, structure  # noqa: F401  (registration)

    return RULES
