"""The model kind: a scikit-learn estimator trained on feature sets, evaluated against a baseline,
promoted through a gate.

A trained model is saved as a new registry version either way; it is *served* (promoted) only
when its promotion check passes. The check is blocking: a model that fails it is not
materialized, nothing downstream is rebuilt, and the previous version keeps serving.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's resource annotations.
import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext
from pydantic import Field, PositiveInt, ValidationError, model_validator

from factory_dagster.markdown import markdown_table
from factory_dagster.products import feature_set
from factory_dagster.products.feature_blocks import Comparison
from factory_dagster.products.kind import (
    BuildableKind,
    BuildContext,
    ColumnDeps,
    code_version,
    line_pool,
    lineage_metadata,
    product_asset,
)
from factory_dagster.products.monitor import REFERENCE, MonitorSpec, check_monitor, reference_bytes
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.column_kinds import kind_of_value
from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.estimators import ESTIMATORS, Task
from factory_dagster.spec.product import ProductSpec
from factory_dagster.spec.pydantic_errors import explain
from factory_dagster.spec.types import Name, NonEmpty, Strict
from factory_dagster.storage.artifacts import ArtifactIntegrityError, ModelRegistry, ModelVersion
from factory_dagster.storage.home import FactoryHome


class TargetSpec(Strict):
    """The label: a label column, turned into a binary class by `op`/`value`, else regressed."""

    column: Name
    op: Comparison | None = None
    value: float | int | str | bool | None = None

    @model_validator(mode="after")
    def _op_and_value(self) -> "TargetSpec":
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
    slice_min_rows: PositiveInt = 100  # smaller slices are reported, never judged
    slice_confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95  # of the slice's bootstrap interval


class ModelSpec(ProductSpec):
    """A scikit-learn model from the allow-list, trained on feature sets (`features: all` or a selection)."""

    features: dict[Name, list[Name] | Literal["all"]] = Field(min_length=1)
    target: TargetSpec
    estimator: EstimatorSpec
    split: SplitSpec
    seed: int | None = None
    max_train_rows: PositiveInt | None = None  # a time-stratified seeded sample bounds the training set
    metrics: list[Metric] = []
    promotion: PromotionSpec = PromotionSpec()
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    slices: list[Name] = []  # inputs whose values get their own test metrics (e.g. origin)
    monitor: MonitorSpec = MonitorSpec()  # drift of what it scores (on by default)

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


def model_inputs(spec: FactorySpec, model: ModelSpec) -> dict[str, str]:
    """The model's input columns in spec order, each with the feature set it comes from (what
    `features: all` means: every kept feature of the set)."""
    inputs: dict[str, str] = {}
    for fs_name, selection in model.features.items():
        if fs_name in spec.feature_sets:
            available = spec.feature_sets[fs_name].output_features()
            for column in available if selection == "all" else selection:
                inputs.setdefault(column, fs_name)
    return inputs


class ModelKind(BuildableKind):
    section = "models"
    spec_model = ModelSpec
    label = "model"
    table = False
    role = "model"

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        return check_model(spec, name)

    def lineage(self, spec: FactorySpec, name: str) -> ColumnDeps:
        """A model's columns are its inputs: each comes from a feature set column of the same name."""
        return {column: [(fs_name, column)] for column, fs_name in model_inputs(spec, spec.models[name]).items()}

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_model_asset(spec, name) for name in names]

    def pool(self, spec: FactorySpec, name: str) -> str:
        """Training compares its candidate with what serves, then promotes it: two trainings at
        once would both promote on a stale comparison. One at a time per model, and per slot for
        the members of one (they compete for one champion)."""
        from factory_dagster.products.slot import slot_of  # the slot module builds on this one

        slot = slot_of(spec, name)
        return line_pool(spec, "slot", slot) if slot else line_pool(spec, "model", name)

    def stored(self, spec: FactorySpec, name: str, home: FactoryHome) -> bool:
        """A model is built when its registry serves a version."""
        return model_registry(home, name).current() is not None


KIND = ModelKind()


def check_model(spec: FactorySpec, name: str) -> list[SpecError]:
    model: ModelSpec = spec.models[name]
    errors: list[SpecError] = []
    before = len(errors)
    labels: dict[str, str] = {}
    provided: dict[str, str] = {}  # input → the feature set it comes from
    for fs_name, selection in model.features.items():
        if fs_name not in spec.feature_sets:
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("features",),
                    f"unknown feature set '{fs_name}' (known: {known(spec.feature_sets)})",
                    at=(fs_name,),
                )
            )
            continue
        fs = spec.feature_sets[fs_name]
        available = fs.output_features()
        if selection != "all" and not selection:
            errors.append(spec.error("models", name, ("features", fs_name), "select at least one feature (or all)"))
        for feature in available if selection == "all" else selection:
            if feature in provided and provided[feature] != fs_name:
                errors.append(
                    spec.error(
                        "models",
                        name,
                        ("features", fs_name),
                        f"input '{feature}' comes from both {provided[feature]} and {fs_name}",
                    )
                )
            elif feature in provided:
                errors.append(spec.error("models", name, ("features", fs_name), f"'{feature}' is selected twice"))
            provided[feature] = fs_name
        if selection != "all":
            for index, feature in enumerate(selection):
                if feature not in available:
                    hint = (
                        " (it is a label, not a feature)"
                        if feature in fs.labels
                        else " (it is declared with keep: false)"
                        if feature in fs.features
                        else ""
                    )
                    errors.append(
                        spec.error(
                            "models",
                            name,
                            ("features", fs_name, index),
                            f"feature set '{fs_name}' has no feature '{feature}'{hint} (features: {known(available)})",
                        )
                    )
        for label in fs.labels:
            labels.setdefault(label, fs_name)
    if len(errors) > before:
        return errors
    keyed = {fs_name: spec.feature_sets[fs_name].entity_columns() for fs_name in model.features}
    first, *others = keyed
    for fs_name in others:
        if len(keyed[fs_name]) != len(keyed[first]):
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("features", fs_name),
                    f"feature set '{fs_name}' is keyed by ({', '.join(keyed[fs_name])}) but '{first}' by "
                    f"({', '.join(keyed[first])}): the model joins its feature sets on the whole entity",
                    at=(fs_name,),
                )
            )
    if model.target.column not in labels:
        errors.append(
            spec.error(
                "models",
                name,
                ("target", "column"),
                f"'{model.target.column}' is not a label of the model's feature sets (labels: {known(labels)})",
            )
        )
    else:
        source = spec.feature_sets[labels[model.target.column]].source
        label_kind = (spec.readable_products().get(source) or {}).get(model.target.column, "unknown")
        if (
            model.target.op is not None
            and label_kind != "unknown"
            and kind_of_value(model.target.value) not in (label_kind, "unknown")
        ):
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("target", "value"),
                    f"the label '{model.target.column}' is {label_kind} but {model.target.value!r} "
                    f"is {kind_of_value(model.target.value)}",
                )
            )
        if model.target.op is None and label_kind not in ("numeric", "unknown"):
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("target",),
                    f"regression needs a numeric label; '{model.target.column}' is {label_kind} (or give op and value)",
                )
            )
    info = ESTIMATORS.get(model.estimator.name)
    if info is None:
        errors.append(
            spec.error(
                "models",
                name,
                ("estimator", "name"),
                f"unknown estimator '{model.estimator.name}' (allowed: {known(ESTIMATORS, 20)})",
            )
        )
        return errors
    if info.task != model.task:
        errors.append(
            spec.error(
                "models",
                name,
                ("estimator", "name"),
                f"{model.estimator.name} is a {info.task} estimator but the target defines a {model.task} task",
            )
        )
    try:
        info.params.model_validate(model.estimator.params)
    except ValidationError as exc:
        for path, reason in explain(exc, info.params, model.estimator.params):
            errors.append(spec.error("models", name, ("estimator", "params", *path), reason))
    valid = CLASSIFICATION_METRICS if model.task == "classification" else REGRESSION_METRICS
    computed = model.metric_names()
    for index, metric in enumerate(model.metrics):
        if metric not in valid:
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("metrics", index),
                    f"'{metric}' is not a {model.task} metric (allowed: {', '.join(valid)})",
                )
            )
    inputs = set(model_inputs(spec, model))
    for index, column in enumerate(model.slices):
        if column not in inputs:
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("slices", index),
                    f"'{column}' is not an input of the model (inputs: {known(inputs)})",
                )
            )
    for path, reason in check_monitor(model.monitor, inputs, computed):
        errors.append(spec.error("models", name, path, reason))
    if model.promotion.slice_min and not model.slices:
        errors.append(spec.error("models", name, ("promotion", "slice_min"), "needs `slices:` to judge"))
    for metric in model.promotion.slice_min:
        if metric in LOWER_IS_BETTER:
            errors.append(
                spec.error(
                    "models",
                    name,
                    ("promotion", "slice_min"),
                    f"{metric} is better when lower: slice_min takes metrics where higher is better",
                )
            )
    promotion = model.promotion
    for key, metrics in (
        ("min", promotion.min),
        ("max", promotion.max),
        ("beat_baseline", promotion.beat_baseline),
        ("slice_min", promotion.slice_min),
    ):
        for metric in metrics:
            if metric not in computed:
                errors.append(
                    spec.error(
                        "models",
                        name,
                        ("promotion", key),
                        f"'{metric}' is not among the model's metrics ({', '.join(computed)})",
                    )
                )
    return errors


PROMOTION_CHECK = "promotion"
TRAINING_SOURCE = Path(__file__).with_name("training.py")  # hashed into the code version, imported when training
SLOT_SOURCE = Path(__file__).with_name("slot.py")  # a slot member's code version: how candidates are judged


class FeatureDataError(Exception):
    """The stored feature data cannot feed the model (absent, or written under an older spec)."""


def model_frame(
    spec: FactorySpec, model: ModelSpec, home: FactoryHome, keys: list[str] | None = None
) -> tuple[pl.DataFrame, list[str], str]:
    """Entity, timestamp, labels and features of the model's feature sets, joined on the whole
    entity (the sets' entity columns matched in declared order).

    `keys`: the partitions to read (all stored ones of each set's current layout by default).
    Returns the frame and the names of its entity columns and timestamp (from the first set).
    """
    frame, entity, timestamp = scan_model_frame(spec, model, home, keys)
    return frame.collect(), entity, timestamp


def scan_model_frame(
    spec: FactorySpec, model: ModelSpec, home: FactoryHome, keys: list[str] | None = None
) -> tuple[pl.LazyFrame, list[str], str]:
    """`model_frame`, not yet read."""
    frame: pl.LazyFrame | None = None
    entity: list[str] = []
    timestamp = ""
    inputs = model_inputs(spec, model)
    for fs_name in model.features:
        fs = spec.feature_sets[fs_name]
        chosen = [column for column, source in inputs.items() if source == fs_name]
        dataset = feature_set.feature_dataset(home, fs_name)
        wanted = keys if keys is not None else dataset.keys(partitioned=fs.partitions is not None)
        if not any(dataset.path_for(k).exists() for k in wanted):
            raise FeatureDataError(
                f"feature set {fs_name} has no stored data"
                + (f" for {wanted[0]}..{wanted[-1]}" if keys else "")
                + ": materialize it first"
            )
        columns = [*fs.key_columns(), *fs.labels, *chosen]
        if stale := dataset.missing_columns(wanted, columns):
            first = min(stale)
            raise FeatureDataError(
                f"feature set {fs_name}: {len(stale)} stored partition(s) were written under an older spec "
                f"(e.g. {first} lacks {', '.join(stale[first])}): rebuild them (factory backfill --select "
                f"{fs_name}, or factory build --full-refresh)"
            )
        lazy = dataset.scan(wanted)
        if frame is None:
            entity, timestamp = fs.entity_columns(), fs.timestamp
            frame = lazy.select(columns)
        else:
            extra = [c for c in [*fs.labels, *chosen] if c not in frame.collect_schema()]
            renamed = dict(zip(fs.entity_columns(), entity, strict=True))
            frame = frame.join(lazy.select([*renamed, *extra]).rename(renamed), on=entity, how="inner")
    assert frame is not None  # the spec guarantees at least one feature set
    return frame, entity, timestamp


def model_registry(home: FactoryHome, name: str) -> ModelRegistry:
    return ModelRegistry(home.model_dir(name))


def _metrics_table(metrics: dict[str, float], baseline: dict[str, float]) -> str:
    from factory_dagster.products.training import better

    return markdown_table(
        ["metric", "model", "baseline", "model better"],
        [
            (m, f"{v:.4f}", f"{baseline[m]:.4f}", "yes" if better(m, v, baseline[m]) else "no")
            for m, v in metrics.items()
        ],
    )


def promotion_failures(
    model: ModelSpec,
    metrics: dict[str, float],
    baseline: dict[str, float],
    slices: dict[str, dict[str, dict[str, float]]] | None = None,
) -> list[str]:
    """Why a trained model may not be served; empty when it may."""
    from factory_dagster.products.training import better

    failures = [f"{m} is {v}" for m, v in metrics.items() if not math.isfinite(v)]
    failures += [f"{m} {metrics[m]:.4f} < required {t}" for m, t in model.promotion.min.items() if metrics[m] < t]
    failures += [f"{m} {metrics[m]:.4f} > allowed {t}" for m, t in model.promotion.max.items() if metrics[m] > t]
    failures += [
        f"{m} {metrics[m]:.4f} does not beat the baseline's {baseline[m]:.4f}"
        for m in model.metrics_to_beat_baseline()
        if not better(m, metrics[m], baseline[m])
    ]
    for column, values in (slices or {}).items():
        for value, measured in values.items():
            failures += [
                f"{m} {measured[m]:.4f} < required {t} on {column}={value} "
                f"({model.promotion.slice_confidence:.0%} CI {measured[f'{m}_low']:.4f}..{measured[f'{m}_high']:.4f}, "
                f"{int(measured['rows'])} rows)"
                for m, t in model.promotion.slice_min.items()
                if slice_verdict(measured, m, t) == "fail"
            ]
    return failures


def slice_verdict(measured: dict[str, float], metric: str, threshold: float) -> str:
    """A slice fails only when its whole interval is below the threshold and passes only when
    its whole interval is above: between, or too small to measure, it is noise either way."""
    low, high = measured.get(f"{metric}_low", math.nan), measured.get(f"{metric}_high", math.nan)
    if not (math.isfinite(low) and math.isfinite(high)):
        return "too small" if metric not in measured else "inconclusive"
    return "fail" if high < threshold else "pass" if low >= threshold else "inconclusive"


def slice_table(model: ModelSpec, slices: dict[str, dict[str, dict[str, float]]]) -> str:
    """Each slice's size, metric, interval and verdict, for the promotion check's metadata."""
    rows = []
    for column, values in slices.items():
        for value, measured in values.items():
            for m, t in model.promotion.slice_min.items() or {model.metric_names()[0]: math.nan}.items():
                low, high = measured.get(f"{m}_low", math.nan), measured.get(f"{m}_high", math.nan)
                rows.append(
                    (
                        f"{column}={value}",
                        int(measured["rows"]),
                        m,
                        f"{measured[m]:.4f}" if m in measured else "",
                        f"{low:.4f}..{high:.4f}" if math.isfinite(low) else "",
                        slice_verdict(measured, m, t) if math.isfinite(t) else "",
                    )
                )
    return markdown_table(["slice", "rows", "metric", "value", "interval", "verdict"], rows)


def build_model_asset(spec: FactorySpec, name: str) -> dg.AssetsDefinition:
    from factory_dagster.products.slot import slot_of  # the slot module builds on this one

    model: ModelSpec = spec.models[name]
    features = list(model_inputs(spec, model))
    slot = slot_of(spec, name)
    version = code_version(
        [model, *(spec.feature_sets[fs] for fs in model.features), *([spec.slots[slot]] if slot else [])],
        code=[build_model_asset, model_frame, TRAINING_SOURCE, *([SLOT_SOURCE] if slot else [])],
    )

    @product_asset(
        spec,
        model,
        key=name,
        kinds={"scikitlearn"},
        version=version,
        deps=list(model.features),
        output_required=False,
        check_specs=[
            dg.AssetCheckSpec(
                PROMOTION_CHECK,
                asset=name,
                blocking=True,
                description="The trained model meets its promotion thresholds; only then is it served.",
            )
        ],
        metadata={
            "factory/estimator": model.estimator.name,
            "factory/task": model.task,
            "dagster/column_lineage": lineage_metadata(KIND.lineage(spec, name)),
            "factory/features": ", ".join(features),
            "factory/seed": model.seed if model.seed is not None else "none",
        },
    )
    def _train(context: AssetExecutionContext, factory: FactoryResource):
        from factory_dagster.products.training import (
            TrainingError,
            library_versions,
            train_model,
            training_rows,
        )

        home = factory.paths
        try:
            scan, _, timestamp = scan_model_frame(spec, model, home)
            if len(model.features) == 1:  # one set scans in a stable order: read only what training reads
                frame, available = training_rows(model, scan, timestamp)
                result = train_model(model, frame, timestamp, features, train_rows_available=available)
            else:  # joined sets: rows chosen by position could differ between two reads
                frame = scan.collect()
                result = train_model(model, frame, timestamp, features)
        except (FeatureDataError, TrainingError) as exc:
            raise dg.Failure(description=f"model {name}: {exc}", allow_retries=False) from None

        details = {
            "metrics": result.metrics,
            "baseline_metrics": result.baseline_metrics,
            "train_window": str(result.train_window),
            "test_window": str(result.test_window),
            "data_sha256": result.data_sha256,
            "seed": model.seed,
            "code_version": version,
            "libraries": library_versions(),
            "features": result.features,
            "run_id": context.run.run_id,
        }
        registry = model_registry(home, name)
        record = registry.save(result.pipeline, details)
        if result.reference is not None:
            record = registry.attach(record.version, REFERENCE, reference_bytes(result.reference))
        failures = promotion_failures(model, result.metrics, result.baseline_metrics, result.slice_metrics)
        served = registry.current()

        metadata: dict[str, Any] = {
            "model_version": record.version,
            "artifact_sha256": record.sha256,
            "dagster/uri": str(registry.directory / record.file),
            "metrics": dg.MetadataValue.md(_metrics_table(result.metrics, result.baseline_metrics)),
            **{f"metric/{k}": dg.MetadataValue.float(v) for k, v in result.metrics.items()},
            **{f"baseline/{k}": dg.MetadataValue.float(v) for k, v in result.baseline_metrics.items()},
            "train_window": str(result.train_window),
            "test_window": str(result.test_window),
            "train_rows": result.train_rows,
            "train_rows_available": result.train_rows_available,
            "max_train_rows": model.max_train_rows if model.max_train_rows is not None else "none",
            "test_rows": result.test_rows,
            "training_data_sha256": result.data_sha256,
            "factory/code_version": version,
            "seed": model.seed if model.seed is not None else "none",
            "library_versions": dg.MetadataValue.json(details["libraries"]),
            "feature_importance": dg.MetadataValue.json(
                dict(sorted(result.importances.items(), key=lambda kv: -kv[1]))
            ),
        }
        if result.slice_metrics:
            metadata["slice_metrics"] = dg.MetadataValue.json(result.slice_metrics)
            metadata["slices"] = dg.MetadataValue.md(slice_table(model, result.slice_metrics))
        if result.positive_rate is not None:
            metadata["train_positive_rate"] = dg.MetadataValue.float(result.positive_rate)

        if failures:
            yield dg.AssetCheckResult(
                check_name=PROMOTION_CHECK,
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(failures),
                metadata={**metadata, "still_serving": served.version if served else "none"},
            )
            return
        judged: dict[str, Any] = {}
        if slot is not None:
            from factory_dagster.products.slot import judge_candidate  # the slot module builds on this one

            try:
                verdict = judge_candidate(
                    spec, home, name, record, result.pipeline, frame, timestamp, result.test_window
                )
            except (FileNotFoundError, KeyError, ArtifactIntegrityError, FeatureDataError) as exc:
                yield dg.AssetCheckResult(
                    check_name=PROMOTION_CHECK,
                    passed=False,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=f"model {name}: cannot compare with the slot's champion: {str(exc).strip(chr(39))}",
                    metadata={**metadata, "slot": slot, "still_serving": served.version if served else "none"},
                )
                return
            judged = verdict.metadata()
            metadata |= {"slot": slot, "slot_promoted": verdict.promoted, "slot_role": verdict.role}
        registry.promote(record.version)
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(
            check_name=PROMOTION_CHECK,
            passed=True,
            description=judged.get("slot_verdict"),
            metadata={
                "model_version": record.version,
                "thresholds": dg.MetadataValue.json(model.promotion.model_dump()),
                **judged,
            },
        )

    return _train


def version_metadata(record: ModelVersion) -> dict[str, Any]:
    """What a materialization records about a model version, from the registry."""
    details = record.details
    return {
        "model_version": record.version,
        "artifact_sha256": record.sha256,
        **{f"metric/{k}": dg.MetadataValue.float(v) for k, v in details.get("metrics", {}).items()},
        **{f"baseline/{k}": dg.MetadataValue.float(v) for k, v in details.get("baseline_metrics", {}).items()},
        "train_window": str(details.get("train_window")),
        "test_window": str(details.get("test_window")),
        "training_data_sha256": str(details.get("data_sha256")),
        "factory/code_version": str(details.get("code_version")),
        "seed": details.get("seed") if details.get("seed") is not None else "none",
        "library_versions": dg.MetadataValue.json(details.get("libraries", {})),
    }


def rollback(
    home: FactoryHome, instance: dg.DagsterInstance, name: str, to: str | None = None
) -> tuple[ModelVersion, ModelVersion]:
    """Serve an earlier version (by default the newest older one that was served); returns (new, old).

    Only a version that was served before (it passed its promotion check then) can be served
    again. The artifact is hash-checked first, and the switch is recorded as a materialization
    of the model, so that scoring verifies against the served version.
    """
    registry = model_registry(home, name)
    current = registry.current()
    if current is None:
        raise LookupError(f"{name} has no served version yet")
    versions = sorted(registry.versions(), key=lambda v: v.created_at)
    if to is not None:
        target = next((v for v in versions if v.version == to), None)
        if target is None:
            raise LookupError(f"{name} has no version {to} (versions: {', '.join(v.version for v in versions)})")
        if not target.was_served:
            raise LookupError(
                f"{name} version {to} was never served (it did not pass its promotion check); "
                f"served versions: {', '.join(v.version for v in versions if v.was_served)}"
            )
    else:
        earlier = [v for v in versions if v.was_served and v.created_at < current.created_at]
        if not earlier:
            raise LookupError(f"{name} has no served version older than the current {current.version}")
        target = earlier[-1]
    registry.verified_bytes(target)  # raises ArtifactIntegrityError for a tampered artifact
    registry.promote(target.version)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=dg.AssetKey(name),
            description=f"rolled back from {current.version}",
            metadata={**version_metadata(target), "rolled_back_from": current.version},
        )
    )
    return target, current
