"""Declarative automation and freshness, as the spec declares them."""

from __future__ import annotations

import dagster as dg

from factory_dagster.spec.time import FreshnessSpec


def follow_upstream(ignore: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """Materialize when a dependency was updated, once every blocking check on the deps passed.

    Like `eager()`, but for every partition (not only the latest: replayed history counts) and
    never on missing partitions alone (a new home does not start rebuilding years by itself).
    """
    updated = dg.AutomationCondition.any_deps_updated()
    if ignore is not None:
        updated = updated.ignore(ignore)
    return (
        updated.since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("follow upstream once its gates passed")


def freshness_policy(spec: FreshnessSpec | None) -> dg.FreshnessPolicy | None:
    if spec is None:
        return None
    return dg.FreshnessPolicy.time_window(fail_window=spec.fail_after, warn_window=spec.warn_after)
