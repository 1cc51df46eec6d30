"""Typed models of the factory spec: one class per section entry.

A product line is a folder of YAML files; each file holds any of the sections below. Names are
the mapping keys (`models: {delay_classifier: {...}}`) and become the Dagster asset keys.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

from factory_dagster.spec.estimators import ESTIMATORS, Task
from factory_dagster.spec.features import Comparison, FeatureSpec
from factory_dagster.spec.time import (
    AutomationSpec,
    FreshnessSpec,
    JobSpec,
    PartitionsSpec,
    ScheduleSpec,
    SensorSpec,
)
from factory_dagster.spec.types import ColumnType, Name, NonEmpty, Owner, Strict


class ProductSpec(Strict):
    """What every product carries: who owns it, what it is, where it shows in the UI."""

    description: NonEmpty
    owner: Owner
    group: Name | None = None
    tags: dict[str, str] = {}
    freshness: FreshnessSpec | None = None

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        for key in tags:
            if not re.match(r"^[A-Za-z0-9_.-]{1,63}$", key):
                raise ValueError(f"tag key '{key}' must be 1-63 letters, digits, '_', '.' or '-'")
        return tags


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
    """Where run events go: a JSON-lines file under the factory home, and/or an HTTP endpoint.

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

    @model_validator(mode="before")
    @classmethod
    def _named_by_folder(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" in value:
            raise ValueError("a line is named by its folder (lines/<name>/): remove 'name'")
        return value


class DateParts(Strict):
    year: Name
    month: Name
    day: Name


class SourcePartitionSpec(Strict):
    """Which partition a row belongs to: a date (or timestamp) column, or year/month/day columns."""

    partitions: Name
    date_column: Name | None = None
    date_parts: DateParts | None = None

    @model_validator(mode="after")
    def _one_way(self) -> SourcePartitionSpec:
        if (self.date_column is None) == (self.date_parts is None):
            raise ValueError("give exactly one of date_column or date_parts")
        return self

    def columns(self) -> list[str]:
        if self.date_parts is not None:
            return [self.date_parts.year, self.date_parts.month, self.date_parts.day]
        return [self.date_column]


class SourceSpec(ProductSpec):
    """A raw table landed from a file into the warehouse's `raw` schema.

    A partitioned source lands day by day: from `<factory home>/landing/<landing>/<day>.csv`
    (or `.parquet`) when such a file exists, else from the rows of `file` dated that day.
    """

    file: NonEmpty  # `package://<package>/<path>` or a path (relative to the spec folder)
    format: Literal["csv", "parquet"] = "csv"
    null_values: list[str] = []
    columns: dict[Name, ColumnType] = Field(min_length=1)
    primary_key: list[Name] = []
    partition: SourcePartitionSpec | None = None
    landing: Name | None = None

    @model_validator(mode="after")
    def _key_in_columns(self) -> SourceSpec:
        missing = [c for c in self.primary_key if c not in self.columns]
        if missing:
            raise ValueError(f"primary_key names unknown column(s): {', '.join(missing)}")
        if self.partition is not None:
            missing = [c for c in self.partition.columns() if c not in self.columns]
            if missing:
                raise ValueError(f"partition names unknown column(s): {', '.join(missing)}")
        if self.landing is not None and self.partition is None:
            raise ValueError("a landing folder needs a partition (files are named by day)")
        return self


class FeatureSetSpec(ProductSpec):
    """Features computed in polars from one data product, one row per entity."""

    source: Name
    entity: Name
    timestamp: Name
    labels: list[Name] = []
    features: dict[Name, FeatureSpec] = Field(min_length=1)
    partitions: Name | None = None  # partitioned by the local day of `timestamp`

    def output_features(self) -> list[str]:
        return [name for name, feature in self.features.items() if feature.keep]

    def lookback_days(self) -> int:
        return max((f.lookback_days() for f in self.features.values()), default=0)




class TargetSpec(Strict):
    """The label: a label column, turned into a binary class by `op`/`value`, else regressed."""

    column: Name
    op: Comparison | None = None
    value: float | int | str | bool | None = None

    @model_validator(mode="after")
    def _op_and_value(self) -> TargetSpec:
        if (self.op is None) != (self.value is None):
            raise ValueError("op and value go together (both for a class label, neither for regression)")
        return self

    @property
    def task(self) -> Task:
        return "classification" if self.op is not None else "regression"


class EstimatorSpec(Strict):
    name: NonEmpty
    params: dict[str, Any] = {}


class SplitSpec(Strict):
    """A time-based split: train on `train_days`, then evaluate on the following `test_days`."""

    train_days: PositiveInt
    test_days: PositiveInt
    end: dt.date | Literal["latest"] = "latest"


CLASSIFICATION_METRICS = ("roc_auc", "log_loss", "precision", "recall", "f1", "accuracy", "brier")
REGRESSION_METRICS = ("rmse", "mae", "r2")
LOWER_IS_BETTER = frozenset({"log_loss", "brier", "rmse", "mae"})
Metric = Literal["roc_auc", "log_loss", "precision", "recall", "f1", "accuracy", "brier", "rmse", "mae", "r2"]


class PromotionSpec(Strict):
    """Thresholds a trained model must meet before it replaces the served one."""

    min: dict[Metric, float] = {}
    max: dict[Metric, float] = {}
    beat_baseline: list[Metric] = []
    slice_min: dict[Metric, float] = {}  # every slice (see `slices`) must reach this


class ModelSpec(ProductSpec):
    features: dict[Name, list[Name] | Literal["all"]] = Field(min_length=1)
    target: TargetSpec
    estimator: EstimatorSpec
    split: SplitSpec
    seed: int | None = None
    metrics: list[Metric] = []
    promotion: PromotionSpec = PromotionSpec()
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    slices: list[Name] = []  # inputs whose values get their own test metrics (e.g. origin)

    @property
    def task(self) -> Task:
        return self.target.task

    def metric_names(self) -> list[str]:
        if self.metrics:
            return list(self.metrics)
        return list(CLASSIFICATION_METRICS if self.task == "classification" else REGRESSION_METRICS)

    def metrics_to_beat_baseline(self) -> list[str]:
        """The promotion's baseline metrics; with no promotion rule at all, the first metric:
        a model no better than a Dummy is never served by default."""
        p = self.promotion
        if p.beat_baseline or p.min or p.max or p.slice_min:
            return list(p.beat_baseline)
        return self.metric_names()[:1]

    def estimator_params(self) -> dict[str, Any]:
        """The validated estimator parameters, with defaults made explicit."""
        return ESTIMATORS[self.estimator.name].params(**self.estimator.params).model_dump()


class ScoreSpec(Strict):
    last_days: PositiveInt


class PredictionsSpec(ProductSpec):
    """Scores of the served model: per partition (`partitions`), or the latest `score.last_days`."""

    model: Name
    score: ScoreSpec | None = None
    partitions: Name | None = None

    @model_validator(mode="after")
    def _one_way(self) -> PredictionsSpec:
        if (self.score is None) == (self.partitions is None):
            raise ValueError("give exactly one of partitions (score each day) or score.last_days")
        return self


SECTIONS: dict[str, type[Strict]] = {
    "partitions": PartitionsSpec,
    "sources": SourceSpec,
    "feature_sets": FeatureSetSpec,
    "models": ModelSpec,
    "predictions": PredictionsSpec,
    "jobs": JobSpec,
    "sensors": SensorSpec,
    "schedules": ScheduleSpec,
}
