"""A loaded product line: its own settings, every spec entry, where it was written, and its dbt models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import model_validator

from factory_dagster.spec.column_kinds import Kind
from factory_dagster.spec.dbt_manifest import DbtModelInfo
from factory_dagster.spec.debt import DebtSpec
from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.product import ProductKind, ProductSpec
from factory_dagster.spec.root import FactoryRoot
from factory_dagster.spec.time import AutomationSpec, JobSpec, PartitionsSpec, ScheduleSpec, SensorSpec
from factory_dagster.spec.types import Name, NonEmpty, Strict
from factory_dagster.spec.yaml_source import KeyPath, YamlDocument, format_key_path


class DbtPartitionedSpec(Strict):
    """dbt models (a dbt selection) that are partitioned, and their date column."""

    select: NonEmpty
    partitions: Name
    date_column: Name


class DbtSpec(Strict):
    """How the line runs its dbt models (dbt_project/models/<line>/): which are partitioned."""

    partitioned: DbtPartitionedSpec | None = None


class GatesSpec(Strict):
    """Quality gates: GX suites in expectations/<line>/, named after the asset they gate."""

    engine: Literal["polars", "gx"] = "polars"  # polars: one-pass fast path, GX for the rest


class OpenLineageSpec(Strict):
    """Where run events go when no OpenLineage configuration of the user's own is found: a
    JSON-lines file under the factory home, and/or an HTTP endpoint.

    The endpoint comes from this setting or `$OPENLINEAGE_URL`; an API key only ever comes from
    the environment variable named by `api_key_env`.
    """

    enabled: bool = True
    namespace: NonEmpty | None = None  # default: the line's name
    file: NonEmpty | None = "lineage/openlineage.jsonl"  # relative to the factory home; null: no file
    url: NonEmpty | None = None
    api_key_env: NonEmpty = "OPENLINEAGE_API_KEY"

    @model_validator(mode="after")
    def _contained(self) -> OpenLineageSpec:
        # A spec may not send arbitrary secrets away, nor write outside the factory home.
        if not self.api_key_env.startswith("OPENLINEAGE_"):
            raise ValueError(f"api_key_env must name an OPENLINEAGE_* variable, got {self.api_key_env!r}")
        if self.file is not None and (self.file.startswith(("/", "~")) or ".." in self.file.split("/")):
            raise ValueError(f"file must be a path inside the factory home, got {self.file!r}")
        return self


class LineSpec(Strict):
    """The product line itself, named by its folder (lines/<name>/): what it is, how it runs."""

    description: NonEmpty
    dbt: DbtSpec = DbtSpec()
    gates: GatesSpec = GatesSpec()
    automation: AutomationSpec = AutomationSpec()
    openlineage: OpenLineageSpec = OpenLineageSpec()


@dataclass
class FactorySpec:
    """A validated product line. Built by the loader; read by the builders and the CLI.

    Product entries are kept by section (`spec.sources`, `spec.models`, ...), each kind's facts
    are asked of its kind (`spec.kind_of(name)`), never re-derived here.
    """

    name: str  # the line's folder name: lines/<name>/
    root: FactoryRoot
    line: LineSpec
    kinds: Sequence[ProductKind] = ()
    debt: DebtSpec = field(default_factory=DebtSpec)
    products: dict[str, dict[str, ProductSpec]] = field(default_factory=dict)  # section → name → entry
    partitions: dict[str, PartitionsSpec] = field(default_factory=dict)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    sensors: dict[str, SensorSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    dbt_models: dict[str, DbtModelInfo] = field(default_factory=dict)  # the line's own models
    documents: dict[tuple[str, str], YamlDocument] = field(default_factory=dict)

    def __getattr__(self, section: str) -> dict[str, Any]:
        """A product section's entries by name: `spec.sources`, `spec.feature_sets`, ..."""
        products = self.__dict__.get("products")
        if products is not None and section in products:
            return products[section]
        raise AttributeError(f"{type(self).__name__} has no attribute or product section {section!r}")

    def error(self, section: str, name: str, rest: KeyPath, reason: str, at: KeyPath = ()) -> SpecError:
        """A SpecError for `section.name.<rest>` in the file that declared it; `at` narrows the
        line reported (e.g. the offending key inside a mapping) without lengthening the key."""
        doc = self.documents.get((section, name))
        path: KeyPath = (section, *rest) if section == name else (section, name, *rest)  # `line`, `debt`
        return SpecError(
            doc.path if doc else None,
            format_key_path(path),
            reason,
            doc.line_of((*path, *at)) if doc else None,
        )

    @property
    def spec_dir(self) -> Path:
        return self.root.line_dir(self.name)

    @property
    def suites_dir(self) -> Path:
        return self.root.suites_dir(self.name)

    @property
    def dbt_project_dir(self) -> Path | None:
        """The dbt project, when the line has models in it (dbt_project/models/<line>/)."""
        return self.root.dbt_project_dir if self.root.dbt_models_dir(self.name).is_dir() else None

    def kind_of(self, name: str) -> ProductKind | None:
        """The kind of the product named `name` (the first kind declaring it)."""
        return next((kind for kind in self.kinds if name in kind.names(self)), None)

    def key_of(self, name: str) -> str:
        kind = self.kind_of(name)
        return kind.key(self, name) if kind is not None else name

    def product_of_key(self, key: str) -> tuple[ProductKind, str] | None:
        """(kind, name) of the product behind an asset key, if the line declares it."""
        for kind in self.kinds:
            for name in kind.names(self):
                if kind.key(self, name) == key:
                    return kind, name
        return None

    def readable_products(self) -> dict[str, dict[str, Kind] | None]:
        """Products a feature set or a lookup may read, by name, with their columns (None when unknown)."""
        products: dict[str, dict[str, Kind] | None] = {}
        for kind in self.kinds:
            if kind.readable:
                for name in kind.names(self):
                    products.setdefault(name, kind.columns(self, name))
        return products

    def asset_columns(self) -> dict[str, set[str] | None]:
        """Every table-like asset of the line by key, with its columns (None when not known statically)."""
        columns: dict[str, set[str] | None] = {}
        for kind in self.kinds:
            for name in kind.names(self) if kind.table else ():
                known = kind.columns(self, name)
                columns[kind.key(self, name)] = set(known) if known is not None else None
        return columns

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary, used by `factory list --format json` and debugging."""
        return {
            "line": self.name,
            "spec_dir": str(self.spec_dir),
            **{kind.section or kind.label.replace(" ", "_") + "s": sorted(kind.names(self)) for kind in self.kinds},
        }
