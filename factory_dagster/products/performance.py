"""The realized-performance kind: for every daily-partitioned predictions asset, the metrics the
serving version actually reached on each day whose labels exist, next to its offline test metrics.

`<predictions>_performance` is partitioned like the predictions and follows them; each day is one
parquet file under `<factory home>/monitoring/<name>/`, and its `performance_decay` check fails
(WARN, or ERROR when declared) when a metric is worse than offline by more than its tolerance.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's resource annotations.
import math
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from factory_dagster.automation.conditions import follow_upstream
from factory_dagster.automation.partitions import partitions_def, window_of
from factory_dagster.markdown import markdown_table
from factory_dagster.products import feature_set
from factory_dagster.products.feature_set import write_partitions
from factory_dagster.products.kind import BuildableKind, BuildContext, code_version, product_asset
from factory_dagster.products.metadata import table_metadata
from factory_dagster.products.model import LOWER_IS_BETTER, ModelSpec, model_registry
from factory_dagster.products.monitor import PerformanceMonitorSpec, check_severity
from factory_dagster.products.predictions import SCORE, PredictionsSpec, predictions_dataset
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.datasets import Dataset
from factory_dagster.storage.home import FactoryHome

SUFFIX = "_performance"
PERFORMANCE_CHECK = "performance_decay"
MONITORING = "monitoring"  # the folder under the factory home
DAY = "day"
MAX_LISTED = 10


def predictions_of(name: str) -> str:
    return name.removesuffix(SUFFIX)


class PerformanceKind(BuildableKind):
    """Not declared in a section: every daily predictions asset whose model monitors performance has one."""

    section = None
    label = "performance_monitor"
    table = False
    role = "monitor"

    def names(self, spec: FactorySpec) -> list[str]:
        if "predictions" not in spec.products or "models" not in spec.products:
            return []
        return [
            f"{name}{SUFFIX}"
            for name, predictions in spec.predictions.items()
            if predictions.partitions
            and predictions.model in spec.models
            and spec.models[predictions.model].monitor.performance.enabled
        ]

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_performance_asset(spec, name) for name in names]


KIND = PerformanceKind()


def decay(metric: str, realized: float, offline: float) -> float:
    """How much worse the realized value is than offline (positive: worse), in the metric's units."""
    return realized - offline if metric in LOWER_IS_BETTER else offline - realized


def performance_dataset(home: FactoryHome, name: str) -> Dataset:
    return Dataset(home.dataset_dir(MONITORING, name))


def realized_rows(
    model: ModelSpec,
    monitor: PerformanceMonitorSpec,
    joined: pl.DataFrame,
    offline: dict[str, dict[str, float]],
) -> list[dict[str, Any]]:
    """One row per (day, version): rows, realized and offline metrics, decay, and what failed."""
    from factory_dagster.products.training import evaluate

    metrics = model.metric_names()
    tolerances = monitor.tolerances(metrics)
    rows: list[dict[str, Any]] = []
    for (day, version), part in sorted(joined.group_by([DAY, "model_version"]), key=lambda g: str(g[0])):
        y = part.get_column("__y").to_numpy()
        judged = part.height >= monitor.min_rows
        realized = (
            evaluate(model.task, metrics, y, part.get_column(SCORE).to_numpy(), model.threshold) if judged else {}
        )
        reference = offline.get(str(version), {})
        row: dict[str, Any] = {DAY: day, "model_version": version, "labelled_rows": part.height, "judged": judged}
        failures = []
        for m in metrics:
            value, base = realized.get(m, math.nan), reference.get(m, math.nan)
            row[f"realized_{m}"], row[f"offline_{m}"], row[f"decay_{m}"] = value, base, decay(m, value, base)
            if m in tolerances and math.isfinite(row[f"decay_{m}"]) and row[f"decay_{m}"] > tolerances[m]:
                failures.append(
                    f"{day}: {m} {value:.4f} realized vs {base:.4f} offline (version {version}, {part.height} rows): "
                    f"decay {row[f'decay_{m}']:.4f} > tolerance {tolerances[m]}"
                )
        row["failures"] = "; ".join(failures)
        rows.append(row)
    return rows


def build_performance_asset(spec: FactorySpec, name: str) -> dg.AssetsDefinition:
    predictions_name = predictions_of(name)
    predictions: PredictionsSpec = spec.predictions[predictions_name]
    model: ModelSpec = spec.models[predictions.model]
    monitor = model.monitor.performance
    assert predictions.partitions is not None
    partitions = spec.partitions[predictions.partitions]
    first = spec.feature_sets[next(iter(model.features))]
    label_set = next(fs for fs in model.features if model.target.column in spec.feature_sets[fs].labels)
    label_entity = spec.feature_sets[label_set].entity_columns()
    entity = first.entity_columns()
    tolerances = monitor.tolerances(model.metric_names())
    product = predictions.model_copy(
        update={
            "description": f"Realized metrics of {predictions.model} on each day of {predictions_name} whose "
            f"labels exist, against the serving version's offline test metrics.",
            "freshness": None,
        }
    )

    @product_asset(
        spec,
        product,
        key=name,
        kinds={"polars", "parquet"},
        partitions=partitions,
        version=code_version([predictions, model], code=[build_performance_asset, realized_rows]),
        deps=[predictions_name, label_set],
        automation=follow_upstream(),
        output_required=True,
        check_specs=[
            dg.AssetCheckSpec(
                PERFORMANCE_CHECK,
                asset=name,
                partitions_def=partitions_def(partitions),
                description=(
                    f"Fails ({monitor.severity.upper()}) when a realized metric is worse than offline by more than "
                    + ", ".join(f"{m} {t}" for m, t in tolerances.items())
                    + f" (days with at least {monitor.min_rows} labelled rows)."
                ),
            )
        ],
        metadata={"factory/predictions": predictions_name, "factory/model": predictions.model},
    )
    def _realize(context: AssetExecutionContext, factory: FactoryResource):
        from factory_dagster.products.training import target_expression

        home = factory.paths
        window = window_of(context, partitions)
        scored = predictions_dataset(home, predictions_name)
        labels = feature_set.feature_dataset(home, label_set)
        keys = [k for k in window.keys if scored.path_for(k).exists() and labels.path_for(k).exists()]
        joined = pl.DataFrame()
        if keys:
            joined = (
                scored.scan(keys)
                .filter(pl.col("model_name") == predictions.model)  # a slot's rows: other members score too
                .select([*entity, first.timestamp, SCORE, "model_version"])
                .join(
                    labels.scan(keys)
                    .select([*label_entity, model.target.column])
                    .rename(dict(zip(label_entity, entity, strict=True))),
                    on=entity,
                    how="inner",
                )
                .with_columns(
                    target_expression(model.target).alias("__y"), pl.col(first.timestamp).dt.date().alias(DAY)
                )
                .filter(pl.col("__y").is_not_null())
                .collect()
            )
        registry = model_registry(home, predictions.model)
        versions = set(joined.get_column("model_version").unique().to_list()) if joined.height else set()
        offline = {v.version: v.details.get("metrics", {}) for v in registry.versions() if v.version in versions}
        rows = realized_rows(model, monitor, joined, offline) if joined.height else []
        out = pl.DataFrame(rows) if rows else pl.DataFrame(schema={DAY: pl.Date, "model_version": pl.String})
        write_partitions(performance_dataset(home, name), out, pl.col(DAY), window)
        failures = [r["failures"] for r in rows if r["failures"]]
        shown = [m for m in model.metric_names() if m in tolerances] or model.metric_names()[:1]
        table = markdown_table(
            ["day", "version", "rows", *(f"{m} realized / offline" for m in shown)],
            [
                (
                    r[DAY],
                    r["model_version"],
                    r["labelled_rows"],
                    *(f"{r[f'realized_{m}']:.4f} / {r[f'offline_{m}']:.4f}" for m in shown),
                )
                for r in rows[-31:]
            ],
        )
        metadata: dict[str, Any] = {**table_metadata(out), "realized": dg.MetadataValue.md(table)}
        if len(rows) == 1:
            metadata.update({f"realized/{m}": dg.MetadataValue.float(rows[0][f"realized_{m}"]) for m in shown})
        yield dg.MaterializeResult(metadata=metadata)
        severity = check_severity(monitor.severity)
        judged = [r for r in rows if r["judged"]]
        yield dg.AssetCheckResult(
            check_name=PERFORMANCE_CHECK,
            passed=not failures,
            severity=severity,
            description=(
                "; ".join(failures[:MAX_LISTED])
                + (f" (and {len(failures) - MAX_LISTED} more)" if len(failures) > MAX_LISTED else "")
                if failures
                else f"{len(judged)} day(s) judged, none decayed beyond "
                + ", ".join(f"{m} {t}" for m, t in tolerances.items())
            ),
            metadata={
                "days_judged": len(judged),
                "days_decayed": len(failures),
                "tolerance": dg.MetadataValue.json(tolerances),
                "realized": dg.MetadataValue.md(table),
            },
        )

    return _realize
