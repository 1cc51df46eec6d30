"""The product kinds, one module each (spec model, checks, asset key, columns, lineage, builder),
and the loading of lines that knows them.

`KINDS` is in build order, upstream first; a feature set reading a name that is both a dbt
model and a source reads the dbt model (the first kind declaring it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from factory_dagster.products import dbt_model, feature_set, model, performance, predictions, slot, source
from factory_dagster.products.kind import BuildableKind
from factory_dagster.spec import FactoryRoot, FactorySpec, loader

KINDS: tuple[BuildableKind, ...] = (
    dbt_model.KIND,
    source.KIND,
    feature_set.KIND,
    model.KIND,
    slot.KIND,
    predictions.KIND,
    performance.KIND,
)


def debt_rule_ids() -> list[str]:
    """The debt rules' ids, which a line's debt exceptions may name."""
    from factory_dagster.lineage.rules import all_rules  # lazy: the rules read the products

    return list(all_rules())


def load_line(line: str | Path, root: FactoryRoot | Path | str | None = None) -> FactorySpec:
    """Load and validate one product line (a name under the factory root, or its folder)."""
    return loader.load_line(line, root, kinds=KINDS, debt_rules=debt_rule_ids())


def load_factory(root: FactoryRoot | Path | str | None = None, lines: Sequence[str] | None = None) -> list[FactorySpec]:
    """Every line the factory serves (or `lines`), validated, with names unique across lines."""
    return loader.load_factory(root, lines, kinds=KINDS, debt_rules=debt_rule_ids())
