"""Model assets: train from feature sets, evaluate against a baseline, promote through a gate.

A trained model is saved as a new registry version either way; it is *served* (promoted) only
when its promotion check passes. The check is blocking: a model that fails it is not
materialized, nothing downstream is rebuilt, and the previous version keeps serving.
"""

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from factory_dagster.automation.conditions import freshness_policy
from factory_dagster.products.column_lineage import as_metadata, model_lineage
from factory_dagster.products.feature_sets import feature_dataset
from factory_dagster.products.metadata import LINE_TAG, spec_version
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.models import ModelSpec
from factory_dagster.storage.artifacts import ModelRegistry, ModelVersion
from factory_dagster.storage.home import FactoryHome

PROMOTION_CHECK = "promotion"


def model_features(spec: FactorySpec, model: ModelSpec) -> list[str]:
    """The model's input columns, in spec order."""
    features: list[str] = []
    for fs_name, selection in model.features.items():
        available = spec.feature_sets[fs_name].output_features()
        features += available if selection == "all" else list(selection)
    return features


class FeatureDataError(Exception):
    """The stored feature data cannot feed the model (absent, or written under an older spec)."""


def model_frame(spec: FactorySpec, model: ModelSpec, home: FactoryHome,
                keys: list[str] | None = None) -> tuple[pl.DataFrame, str, str]:
    """Entity, timestamp, labels and features of the model's feature sets, joined on the entity.

    `keys`: the partitions to read (all stored ones of each set's current layout by default).
    Returns the frame and the names of its entity and timestamp columns (from the first set).
    """
    frame: pl.LazyFrame | None = None
    entity = timestamp = ""
    for fs_name, selection in model.features.items():
        fs = spec.feature_sets[fs_name]
        chosen = fs.output_features() if selection == "all" else list(selection)
        dataset = feature_dataset(home, fs_name)
        wanted = keys if keys is not None else dataset.keys(partitioned=fs.partitions is not None)
        if not any(dataset.path_for(k).exists() for k in wanted):
            raise FeatureDataError(f"feature set {fs_name} has no stored data"
                                   + (f" for {wanted[0]}..{wanted[-1]}" if keys else "") + ": materialize it first")
        columns = [fs.entity, fs.timestamp, *fs.labels, *chosen]
        if stale := dataset.missing_columns(wanted, columns):
            first = min(stale)
            raise FeatureDataError(
                f"feature set {fs_name}: {len(stale)} stored partition(s) were written under an older spec "
                f"(e.g. {first} lacks {', '.join(stale[first])}): rebuild them (factory backfill --select "
                f"{fs_name}, or factory build --full-refresh)")
        lazy = dataset.scan(wanted)
        if frame is None:
            entity, timestamp = fs.entity, fs.timestamp
            frame = lazy.select(columns)
        else:
            extra = [c for c in [*fs.labels, *chosen] if c not in frame.collect_schema()]
            frame = frame.join(lazy.select([fs.entity, *extra]).rename({fs.entity: entity}), on=entity,
                               how="inner")
    assert frame is not None  # the spec guarantees at least one feature set
    return frame.collect(), entity, timestamp


def model_registry(home: FactoryHome, name: str) -> ModelRegistry:
    return ModelRegistry(home.model_dir(name))


def _metrics_table(metrics: dict[str, float], baseline: dict[str, float]) -> str:
    from factory_dagster.products.training import better

    rows = [f"| {m} | {v:.4f} | {baseline[m]:.4f} | {'yes' if better(m, v, baseline[m]) else 'no'} |"
            for m, v in metrics.items()]
    return "| metric | model | baseline | model better |\n|---|---|---|---|\n" + "\n".join(rows)


def promotion_failures(model: ModelSpec, metrics: dict[str, float], baseline: dict[str, float],
                       slices: dict[str, dict[str, dict[str, float]]] | None = None) -> list[str]:
    """Why a trained model may not be served; empty when it may."""
    import math

    from factory_dagster.products.training import better

    failures = [f"{m} is {v}" for m, v in metrics.items() if not math.isfinite(v)]
    failures += [f"{m} {metrics[m]:.4f} < required {t}" for m, t in model.promotion.min.items() if metrics[m] < t]
    failures += [f"{m} {metrics[m]:.4f} > allowed {t}" for m, t in model.promotion.max.items() if metrics[m] > t]
    failures += [f"{m} {metrics[m]:.4f} does not beat the baseline's {baseline[m]:.4f}"
                 for m in model.metrics_to_beat_baseline() if not better(m, metrics[m], baseline[m])]
    for column, values in (slices or {}).items():
        for value, slice_metrics in values.items():
            failures += [f"{m} {slice_metrics[m]:.4f} < required {t} on {column}={value}"
                         for m, t in model.promotion.slice_min.items()
                         if not math.isfinite(slice_metrics[m]) or slice_metrics[m] < t]
    return failures


def build_model_asset(spec: FactorySpec, name: str) -> dg.AssetsDefinition:
    model = spec.models[name]
    features = model_features(spec, model)
    code_version = spec_version(model, *(spec.feature_sets[fs] for fs in model.features))

    @dg.asset(
        key=name,
        deps=list(model.features),
        group_name=model.group or spec.name,
        owners=[model.owner],
        description=model.description,
        kinds={"scikitlearn"},
        tags={**model.tags, LINE_TAG: spec.name},
        code_version=code_version,
        output_required=False,
        freshness_policy=freshness_policy(model.freshness),
        check_specs=[dg.AssetCheckSpec(
            PROMOTION_CHECK, asset=name, blocking=True,
            description="The trained model meets its promotion thresholds; only then is it served.")],
        metadata={"factory/estimator": model.estimator.name, "factory/task": model.task,
                  "dagster/column_lineage": as_metadata(model_lineage(spec, name)),
                  "factory/features": ", ".join(features), "factory/seed": model.seed if model.seed is not None else "none"},
    )
    def _train(context: AssetExecutionContext, factory: FactoryResource):
        from factory_dagster.products.training import (
            TrainingError,
            library_versions,
            train_model,
        )

        home = factory.paths
        try:
            frame, _, timestamp = model_frame(spec, model, home)
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
            "code_version": code_version,
            "libraries": library_versions(),
            "features": result.features,
            "run_id": context.run.run_id,
        }
        registry = model_registry(home, name)
        record = registry.save(result.pipeline, details)
        failures = promotion_failures(model, result.metrics, result.baseline_metrics, result.slice_metrics)
        served = registry.current()

        metadata: dict[str, object] = {
            "model_version": record.version,
            "artifact_sha256": record.sha256,
            "dagster/uri": str(registry.directory / record.file),
            "metrics": dg.MetadataValue.md(_metrics_table(result.metrics, result.baseline_metrics)),
            **{f"metric/{k}": dg.MetadataValue.float(v) for k, v in result.metrics.items()},
            **{f"baseline/{k}": dg.MetadataValue.float(v) for k, v in result.baseline_metrics.items()},
            "train_window": str(result.train_window),
            "test_window": str(result.test_window),
            "train_rows": result.train_rows,
            "test_rows": result.test_rows,
            "training_data_sha256": result.data_sha256,
            "seed": model.seed if model.seed is not None else "none",
            "library_versions": dg.MetadataValue.json(details["libraries"]),
            "feature_importance": dg.MetadataValue.json(
                dict(sorted(result.importances.items(), key=lambda kv: -kv[1]))),
        }
        if result.slice_metrics:
            metadata["slice_metrics"] = dg.MetadataValue.json(result.slice_metrics)
        if result.positive_rate is not None:
            metadata["train_positive_rate"] = dg.MetadataValue.float(result.positive_rate)

        if failures:
            yield dg.AssetCheckResult(
                check_name=PROMOTION_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
                description="; ".join(failures),
                metadata={**metadata, "still_serving": served.version if served else "none"})
            return
        registry.promote(record.version)
        yield dg.MaterializeResult(metadata=metadata)
        yield dg.AssetCheckResult(check_name=PROMOTION_CHECK, passed=True,
                                  metadata={"model_version": record.version,
                                            "thresholds": dg.MetadataValue.json(model.promotion.model_dump())})

    return _train


def version_metadata(record: ModelVersion) -> dict[str, object]:
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
        "seed": details.get("seed") if details.get("seed") is not None else "none",
        "library_versions": dg.MetadataValue.json(details.get("libraries", {})),
    }


def rollback(home: FactoryHome, instance: dg.DagsterInstance, name: str, to: str | None = None
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
            raise LookupError(f"{name} version {to} was never served (it did not pass its promotion check); "
                              f"served versions: {', '.join(v.version for v in versions if v.was_served)}")
    else:
        earlier = [v for v in versions if v.was_served and v.created_at < current.created_at]
        if not earlier:
            raise LookupError(f"{name} has no served version older than the current {current.version}")
        target = earlier[-1]
    registry.verified_bytes(target)  # raises ArtifactIntegrityError for a tampered artifact
    registry.promote(target.version)
    instance.report_runless_asset_event(dg.AssetMaterialization(
        asset_key=dg.AssetKey(name), description=f"rolled back from {current.version}",
        metadata={**version_metadata(target), "rolled_back_from": current.version}))
    return target, current
