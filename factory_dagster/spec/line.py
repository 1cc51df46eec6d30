"""The loaded product line: every spec entry, where it was written, and the dbt products it sees."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory_dagster.spec.dbt_manifest import DbtModelInfo
from factory_dagster.spec.debt import DebtSpec
from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.kinds import DECLARED, Kind, dbt_kind
from factory_dagster.spec.models import (
    FeatureSetSpec,
    LineSpec,
    ModelSpec,
    PredictionsSpec,
    SourceSpec,
)
from factory_dagster.spec.root import FactoryRoot
from factory_dagster.spec.time import JobSpec, PartitionsSpec, ScheduleSpec, SensorSpec
from factory_dagster.spec.yaml_source import KeyPath, YamlDocument, format_key_path


@dataclass
class FactorySpec:
    """A validated product line. Built by `load_line`; read by the builders and the CLI."""

    name: str  # the line's folder name: lines/<name>/
    root: FactoryRoot
    line: LineSpec
    debt: DebtSpec = field(default_factory=DebtSpec)
    partitions: dict[str, PartitionsSpec] = field(default_factory=dict)
    sources: dict[str, SourceSpec] = field(default_factory=dict)
    feature_sets: dict[str, FeatureSetSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    predictions: dict[str, PredictionsSpec] = field(default_factory=dict)
    jobs: dict[str, JobSpec] = field(default_factory=dict)
    sensors: dict[str, SensorSpec] = field(default_factory=dict)
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    dbt_models: dict[str, DbtModelInfo] = field(default_factory=dict)  # the line's own models
    documents: dict[tuple[str, str], YamlDocument] = field(default_factory=dict)

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

    # The data products a feature set or a lookup may read: raw sources, dbt models, predictions.
    def data_products(self) -> dict[str, tuple[str, ...] | None]:
        """Readable products by name with their known columns (None when undocumented)."""
        products: dict[str, tuple[str, ...] | None] = {}
        for name, model in self.dbt_models.items():
            products[name] = model.columns or None
        for name, source in self.sources.items():
            products.setdefault(name, tuple(source.columns))
        for name in self.predictions:
            if self.predictions[name].model in self.models:
                products.setdefault(name, tuple(sorted(self.prediction_columns(name))))
        return products

    def product_kinds(self, name: str) -> dict[str, Kind] | None:
        """Column → kind of a readable product; None when its columns are not known."""
        if name in self.dbt_models:
            types = dict(self.dbt_models[name].column_types)
            return {c: dbt_kind(t) for c, t in types.items()} or None
        if name in self.sources:
            return {c: DECLARED[t] for c, t in self.sources[name].columns.items()}
        if name in self.predictions and self.predictions[name].model in self.models:
            model = self.models[self.predictions[name].model]
            first = self.feature_sets.get(next(iter(model.features)))
            kinds: dict[str, Kind] = {"score": "numeric", "predicted": "bool", "model_name": "string",
                                      "model_version": "string", "scored_at": "timestamp"}
            if first is not None:
                kinds.update({first.entity: "unknown", first.timestamp: "unknown"})
            return {c: kinds.get(c, "unknown") for c in self.prediction_columns(name)}
        return None

    def prediction_columns(self, name: str) -> set[str]:
        """The columns a predictions asset writes: the entity and time of what it scored, the score,
        the decision (classification), and which model version scored it, when."""
        model = self.models[self.predictions[name].model]
        first = self.feature_sets.get(next(iter(model.features)))
        keys = {first.entity, first.timestamp} if first else set()
        columns = keys | {"score", "model_name", "model_version", "scored_at"}
        return columns | ({"predicted"} if model.task == "classification" else set())

    def feature_set_columns(self, name: str) -> tuple[str, ...]:
        fs = self.feature_sets[name]
        return (fs.entity, fs.timestamp, *fs.labels, *fs.output_features())

    def describe(self) -> dict[str, Any]:
        """A JSON-able summary, used by `factory list --format json` and debugging."""
        return {
            "line": self.name,
            "spec_dir": str(self.spec_dir),
            "sources": sorted(self.sources),
            "dbt_models": sorted(self.dbt_models),
            "feature_sets": sorted(self.feature_sets),
            "models": sorted(self.models),
            "predictions": sorted(self.predictions),
        }
