"""The debt section of the spec: rule thresholds and reasoned exceptions."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from pydantic import PositiveInt

from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.types import NonEmpty, Strict

if TYPE_CHECKING:
    from factory_dagster.spec.line import FactorySpec


class DebtThresholds(Strict):
    """Where the debt rules draw the line; each is a documented knob, not a magic number."""

    max_depth: PositiveInt = 8  # longest chain of assets from a root
    max_fan_in: PositiveInt = 6  # parents of one asset (7 or more is a jungle)
    max_leaf_children: PositiveInt = 2  # children with no children of their own
    max_source_fanout: PositiveInt = 1  # assets reading one raw source directly
    max_root_sources: PositiveInt = 5  # raw sources behind one model (CACE)
    max_features: PositiveInt = 50  # inputs of one model (CACE)
    stale_after_days: PositiveInt = 30  # no materialization for longer: stale
    failing_check_days: PositiveInt = 3  # a check failed without a pass for longer: flagged
    importance_epsilon: float = 0.0  # a feature with permutation importance <= this adds nothing


class DebtException(Strict):
    """A reasoned exception to a debt rule, like dbt-project-evaluator's exceptions seed."""

    rule: NonEmpty  # a rule id (TD05) or *
    assets: NonEmpty  # a glob over asset keys, e.g. "dim_*" or "raw/*"
    reason: NonEmpty  # why this is accepted: required, so every exception explains itself


class DebtSpec(Strict):
    thresholds: DebtThresholds = DebtThresholds()
    exceptions: list[DebtException] = []


def check_exception_rules(spec: FactorySpec, rules: Collection[str]) -> list[SpecError]:
    """Every exception names a known rule id (or *): a typo would silently accept nothing."""
    return [
        spec.error(
            "debt",
            "debt",
            ("exceptions", index, "rule"),
            f"unknown rule '{exception.rule}' (rules: {', '.join(sorted(rules))})",
        )
        for index, exception in enumerate(spec.debt.exceptions)
        if exception.rule != "*" and exception.rule not in rules
    ]
