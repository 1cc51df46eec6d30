"""What the spec knows of every product kind: the common fields, and the facts a kind answers.

Each kind (source, dbt model, feature set, model, predictions) is one module in `products/`
that subclasses `ProductKind`; the loader is handed the kinds, so the spec layer names none.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator

from factory_dagster.spec.column_kinds import Kind
from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.time import FreshnessSpec
from factory_dagster.spec.types import Name, NonEmpty, Owner, Strict

if TYPE_CHECKING:
    from factory_dagster.spec.line import FactorySpec


class ProductSpec(Strict):
    """What every product carries: who owns it, what it is, where it shows in the UI."""

    description: NonEmpty
    owner: Owner
    group: Name | None = None  # default: the line's name (one group per line)
    tags: dict[str, str] = {}
    freshness: FreshnessSpec | None = None

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if not re.match(r"^[A-Za-z0-9_.-]{1,63}$", key):
                raise ValueError(f"tag key '{key}' must be 1-63 letters, digits, '_', '.' or '-'")
        return tags


class ProductKind:
    """The facts of one product kind: its spec section, asset key, output columns and checks.

    `section` is None for a kind that is not declared in the spec (dbt models: the manifest).
    """

    section: ClassVar[str | None] = None
    spec_model: ClassVar[type[ProductSpec] | None] = None
    label: ClassVar[str] = "product"  # in messages: "a feature set"
    readable: ClassVar[bool] = False  # a feature set or a lookup may read it (a warehouse table)
    table: ClassVar[bool] = True  # its output is a table (rows and columns a gate can check)
    role: ClassVar[str] = "data_product"  # what it is in the lineage graph the debt rules read

    def names(self, spec: FactorySpec) -> list[str]:
        return list(spec.products.get(self.section or "", {}))

    def key(self, spec: FactorySpec, name: str) -> str:
        """The asset key, as a user string (`raw/flights`)."""
        return name

    def columns(self, spec: FactorySpec, name: str) -> dict[str, Kind] | None:
        """Output columns with their kinds, in order; None when not known before it runs."""
        return None

    def row_key(self, spec: FactorySpec, name: str) -> list[str] | None:
        """The columns that identify a row (None when not declared)."""
        return None

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        """Cross-reference checks of one entry, after every file has loaded."""
        return []
