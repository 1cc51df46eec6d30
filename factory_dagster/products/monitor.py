"""Model monitors: what a model declares under `monitor:`, the training reference its served
version keeps, and the drift check on every batch of predictions it scores.

A model is monitored with no configuration at all: every scored day's inputs and scores are
compared with the served version's training reference (see `drift.py` for the tests), the
result is the predictions' `drift` asset check (WARN by default, ERROR when declared), and an
HTML report per day lands under `<factory home>/reports/<line>/drift/<predictions>/<day>.html`.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Annotated, Any, Literal

import dagster as dg
import polars as pl
from pydantic import Field, PositiveInt

from factory_dagster.products.drift import (
    DatasetDrift,
    DriftSettings,
    DriftTest,
    drift_by_batch,
)
from factory_dagster.products.drift_report import verdict, write_report
from factory_dagster.spec.types import Duration, Name, Strict
from factory_dagster.storage.artifacts import ModelRegistry, ModelVersion
from factory_dagster.storage.home import FactoryHome

DRIFT_CHECK = "drift"
# Metadata flag of a drift result that judged nothing (no reference): no evidence of drift, so never a
# reason to retrain (a rollback to a version trained before monitoring must not be undone by a retrain).
NOT_JUDGED = "factory/not_judged"
REFERENCE = "reference.parquet"  # attached to every trained version: its training inputs and scores
SCORE_COLUMN = "score"
MAX_TABLE_DAYS = 62  # a longer run's metadata lists its drifted days (and the worst) only


class DriftMonitorSpec(Strict):
    """Drift of the scored inputs and scores against the served version's training reference."""

    enabled: bool = True
    severity: Literal["warn", "error"] = "warn"
    columns: list[Name] | Literal["all"] = "all"  # the model inputs compared (the score always is)
    method: Literal["auto", "psi"] = "auto"  # auto: Evidently's choice by type and reference size
    tests: dict[Name, DriftTest] = {}  # per column, e.g. {distance: psi}
    thresholds: dict[DriftTest, Annotated[float, Field(gt=0)]] = {}
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    small_reference_rows: PositiveInt = 1000
    reference_rows: PositiveInt = 50_000  # training rows kept as the reference (a seeded sample)

    def settings(self) -> DriftSettings:
        return DriftSettings(
            small_reference_rows=self.small_reference_rows,
            drift_share=self.drift_share,
            method=self.method,
            tests=dict(self.tests),
            thresholds={str(test): value for test, value in self.thresholds.items()},
        )


DEFAULT_TOLERANCE = 0.05


class PerformanceMonitorSpec(Strict):
    """Realized metrics on each scored day whose labels exist, against the version's offline test
    metrics; a decay (worse by more than `tolerance`, in the metric's units) fails the check."""

    enabled: bool = True
    severity: Literal["warn", "error"] = "warn"
    tolerance: dict[Name, Annotated[float, Field(ge=0)]] = {}  # default: the first metric, 0.05
    min_rows: PositiveInt = 30  # a day with fewer labelled rows is not judged (too noisy)

    def tolerances(self, metrics: list[str]) -> dict[str, float]:
        return dict(self.tolerance) if self.tolerance else {metrics[0]: DEFAULT_TOLERANCE}


class RetrainSpec(Strict):
    """Retrain through the daemon when a monitor fails, at most once per `cooldown`."""

    enabled: bool = True  # the sensor runs when the line's automation is enabled
    on: list[Literal["drift", "decay"]] = Field(default=["drift", "decay"], min_length=1)
    cooldown: Duration = dt.timedelta(days=7)
    minimum_interval_seconds: PositiveInt = 60


class MonitorSpec(Strict):
    """What watches a served model (`monitor:` on a model)."""

    drift: DriftMonitorSpec = DriftMonitorSpec()
    performance: PerformanceMonitorSpec = PerformanceMonitorSpec()
    retrain: RetrainSpec = RetrainSpec()


def check_monitor(
    monitor: MonitorSpec, inputs: set[str], metrics: list[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path under the model, reason) for each column the monitor names that is not an input,
    and each tolerance on a metric the model does not compute."""
    allowed = inputs | {SCORE_COLUMN}
    errors: list[tuple[tuple[str | int, ...], str]] = []
    drift = monitor.drift
    if drift.enabled and SCORE_COLUMN in inputs:
        errors.append(
            (
                ("monitor", "drift"),
                f"an input named '{SCORE_COLUMN}' would be confused with the model's score in the drift reference: "
                "rename that feature, or set monitor.drift.enabled: false",
            )
        )
    for index, column in enumerate(drift.columns if drift.columns != "all" else []):
        if column not in inputs:
            errors.append(
                (
                    ("monitor", "drift", "columns", index),
                    f"'{column}' is not an input of the model (inputs: {', '.join(sorted(inputs))})",
                )
            )
    for column in drift.tests:
        if column not in allowed:
            errors.append(
                (
                    ("monitor", "drift", "tests", column),
                    f"'{column}' is neither an input of the model nor its score (inputs: {', '.join(sorted(inputs))})",
                )
            )
    for metric in monitor.performance.tolerance:
        if metric not in metrics:
            errors.append(
                (
                    ("monitor", "performance", "tolerance", metric),
                    f"'{metric}' is not among the model's metrics ({', '.join(metrics)})",
                )
            )
    return errors


def reference_sample(inputs: pl.DataFrame, limit: int, seed: int | None) -> pl.DataFrame:
    """The training rows kept as the reference: all, or a seeded sample of `limit` rows."""
    return inputs.sample(n=limit, seed=seed or 0) if inputs.height > limit else inputs


def reference_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def load_reference(registry: ModelRegistry, record: ModelVersion) -> pl.DataFrame | None:
    """The version's training reference (hash-checked); None for a version trained without one."""
    data = registry.attachment(record, REFERENCE)
    return pl.read_parquet(io.BytesIO(data)) if data is not None else None


def monitored_columns(monitor: DriftMonitorSpec, reference: pl.DataFrame) -> list[str]:
    columns = [c for c in reference.columns if c != SCORE_COLUMN]
    chosen = columns if monitor.columns == "all" else [c for c in monitor.columns if c in columns]
    return [*chosen, SCORE_COLUMN] if SCORE_COLUMN in reference.columns else chosen


def drift_check_spec(
    asset: str, monitor: MonitorSpec, partitions: dg.PartitionsDefinition | None
) -> list[dg.AssetCheckSpec]:
    """The `drift` check of a predictions asset; partitioned like it, so each day has its verdict."""
    if not monitor.drift.enabled:
        return []
    return [
        dg.AssetCheckSpec(
            DRIFT_CHECK,
            asset=asset,
            description=(
                "The scored inputs and scores against the served version's training reference "
                + ("per partition" if partitions else "over the scored window")
                + f": fails ({monitor.drift.severity.upper()}) on dataset drift "
                f"(at least {monitor.drift.drift_share:.0%} of the columns drifted)."
            ),
            partitions_def=partitions,
        )
    ]


def report_path(home: FactoryHome, line: str, predictions: str, batch: str) -> Path:
    return home.reports / line / "drift" / predictions / f"{batch}.html"


def evaluate(
    monitor: DriftMonitorSpec, reference: pl.DataFrame, current: pl.DataFrame, batches: pl.Series, names: list[str]
) -> list[DatasetDrift]:
    """Each batch's drift over the monitored columns (the reference is prepared once)."""
    columns = monitored_columns(monitor, reference)
    present = [c for c in columns if c in current.columns]
    return drift_by_batch(reference.select(columns), current.select(present), batches, monitor.settings(), names)


def _column_table(drift: DatasetDrift) -> dg.TableMetadataValue:
    schema = dg.TableSchema(
        columns=[
            dg.TableColumn("column", "string"),
            dg.TableColumn("type", "string"),
            dg.TableColumn("test", "string"),
            dg.TableColumn("statistic", "float", description="p-value (ks, chisquare, z) or distance"),
            dg.TableColumn("threshold", "float"),
            dg.TableColumn("drifted", "bool"),
            dg.TableColumn("reference_values", "int"),
            dg.TableColumn("current_values", "int"),
            dg.TableColumn("note", "string"),
        ]
    )
    records = [
        dg.TableRecord(
            {
                "column": c.column,
                "type": c.kind,
                "test": c.test,
                "statistic": float(f"{c.score:.6g}") if c.score is not None else None,
                "threshold": c.threshold,
                "drifted": c.drifted,
                "reference_values": c.reference_rows,
                "current_values": c.current_rows,
                "note": c.note,
            }
        )
        for c in drift.ordered()
    ]
    return dg.MetadataValue.table(records, schema)


def _summary(drift: DatasetDrift) -> str:
    judged = drift.judged
    drifted = [c for c in drift.ordered() if c.drifted]
    head = f"{drift.batch}: {len(drifted)} of {len(judged)} columns drifted (share {drift.share:.2f}"
    head += f" {'>=' if drift.drifted else '<'} {drift.drift_share})"
    return head + (": " + "; ".join(f"{c.column} {verdict(c)}" for c in drifted[:4]) if drifted else "")


def write_reports(home: FactoryHome, line: str, predictions: str, drifts: list[DatasetDrift]) -> dict[str, Path]:
    """One HTML report per batch that had rows; by batch."""
    return {
        d.batch: write_report(report_path(home, line, predictions, d.batch), f"Drift of {predictions} on {d.batch}", d)
        for d in drifts
        if d.rows
    }


def drift_check_result(
    monitor: DriftMonitorSpec, version: str, drifts: list[DatasetDrift], reports: dict[str, Path]
) -> dg.AssetCheckResult:
    """The `drift` check: fails when a batch drifts as a dataset; its metadata is the per-column
    table (of the worst batch when several were scored), the drift share and the report."""
    severity = check_severity(monitor.severity)
    scored = [d for d in drifts if d.rows]
    if not scored:
        return dg.AssetCheckResult(
            check_name=DRIFT_CHECK,
            passed=True,
            description="no rows scored: nothing to compare",
            metadata={"model_version": version, "batches": len(drifts)},
        )
    worst = max(scored, key=lambda d: (d.share, d.batch))
    drifted = [d for d in scored if d.drifted]
    metadata: dict[str, Any] = {
        "model_version": version,
        "drift_share": dg.MetadataValue.float(worst.share),
        "dataset_drift": worst.drifted,
        "drift_share_threshold": dg.MetadataValue.float(monitor.drift_share),
        "batch": worst.batch,
        "columns": _column_table(worst),
        "drifted_columns": [c.column for c in worst.ordered() if c.drifted],
    }
    if worst.batch in reports:
        metadata["report"] = dg.MetadataValue.path(str(reports[worst.batch]))
        metadata["report_url"] = dg.MetadataValue.url(reports[worst.batch].as_uri())
    if len(scored) > 1:
        shown = scored if len(scored) <= MAX_TABLE_DAYS else drifted[:MAX_TABLE_DAYS]
        metadata["batches_scored"] = len(scored)
        metadata["batches_drifted"] = len(drifted)
        metadata["drifted_batches"] = [d.batch for d in drifted[:MAX_TABLE_DAYS]]
        metadata["drift_by_batch"] = dg.MetadataValue.json({d.batch: round(d.share, 4) for d in shown})
    if drifted:
        description = "dataset drift on " + (
            _summary(drifted[0]) if len(drifted) == 1 else f"{len(drifted)} days, worst " + _summary(worst)
        )
    else:
        description = "no dataset drift; worst " + _summary(worst)
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK, passed=not drifted, severity=severity, description=description, metadata=metadata
    )


def check_severity(declared: str) -> dg.AssetCheckSeverity:
    """The Dagster severity of a monitor's `severity: warn | error`."""
    return dg.AssetCheckSeverity.ERROR if declared == "error" else dg.AssetCheckSeverity.WARN


def unjudged_result(version: str, severity: dg.AssetCheckSeverity, description: str) -> dg.AssetCheckResult:
    """A drift result that compared nothing (flagged, so it never requests a retrain)."""
    return dg.AssetCheckResult(
        check_name=DRIFT_CHECK,
        passed=False,
        severity=severity,
        description=description,
        metadata={"model_version": version, NOT_JUDGED: True},
    )


def unreadable_reference_result(version: str, reason: str) -> dg.AssetCheckResult:
    """A reference that fails its hash check (or is gone) is never compared against: an ERROR that
    names it, the predictions already published stay."""
    return unjudged_result(
        version,
        dg.AssetCheckSeverity.ERROR,
        f"the training reference of served version {version} cannot be trusted: {reason}",
    )


def unpublished_result(version: str) -> dg.AssetCheckResult:
    """Scores the gate kept from being published are not judged (the gate's check says why)."""
    return unjudged_result(
        version, dg.AssetCheckSeverity.WARN, "not judged: the scores gate kept the scored rows from being published"
    )


def missing_reference_result(monitor: DriftMonitorSpec, version: str) -> dg.AssetCheckResult:
    """A served version trained before monitoring has nothing to compare against: say so (WARN)."""
    return unjudged_result(
        version,
        dg.AssetCheckSeverity.WARN,
        f"served version {version} has no training reference: retrain the model to monitor its drift",
    )
