"""What a run did, read back from the Dagster instance: per asset, per check, per failure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from factory_dagster.gates.publish import WINDOW_ROWS
from factory_dagster.products.metadata import metadata_values
from factory_dagster.storage.events import run_records

_EVENTS = {
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.STEP_SKIPPED,
    dg.DagsterEventType.RUN_FAILURE,
}


@dataclass
class CheckOutcome:
    asset: str
    name: str
    passed: bool
    severity: str
    description: str | None
    metadata: dict[str, Any]


@dataclass
class AssetOutcome:
    key: str
    partitions: list[str] = field(default_factory=list)
    rows: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rows_by_partition: dict[str, int] = field(default_factory=dict)

    def partition_rows(self) -> dict[str, int]:
        """Rows per partition written by the run, when the asset reports them."""
        return dict(self.rows_by_partition)


@dataclass
class RunReport:
    run_id: str
    success: bool
    seconds: float
    selected: list[str]
    assets: dict[str, AssetOutcome] = field(default_factory=dict)
    checks: list[CheckOutcome] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)  # step key → one-line reason
    step_assets: dict[str, list[str]] = field(default_factory=dict)  # step key → asset keys
    log_path: Path | None = None  # what the run printed (dbt output), when captured

    def not_built(self) -> list[str]:
        return [key for key in self.selected if key not in self.assets]

    def failed_checks(self, severity: str | None = None) -> list[CheckOutcome]:
        return [c for c in self.checks if not c.passed and severity in (None, c.severity)]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def dbt_reason(message: str) -> str:
    """The first dbt error of a failed dbt invocation, in one line (dagster-dbt's is long)."""
    text = _ANSI.sub("", message)
    parsed = text.split("Errors parsed from dbt logs:", 1)[-1]
    lines = [line.strip() for line in parsed.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if re.match(r"^(Compilation|Runtime|Database|Parsing) Error", line) or line.startswith("Failure in test"):
            detail = next((n for n in lines[index + 1 : index + 3] if not n.startswith(("compiled code", "-"))), "")
            reason = f"dbt: {line}{': ' + detail if detail else ''}"
            if "out of sync" in detail:
                reason += " (the model's columns changed: run factory build --full-refresh)"
            return reason
    return "dbt failed: " + (lines[0] if lines else "see the run log")


def _failure_reason(event: dg.DagsterEvent) -> str:
    error = event.step_failure_data.error if event.step_failure_data else None
    if error is None:
        return event.message or "failed"
    user = event.step_failure_data.user_failure_data
    if user is not None and user.description:
        return user.description
    cause = error
    while cause.cause is not None and "DagsterExecutionStepExecutionError" in (cause.cls_name or ""):
        cause = cause.cause
    if cause.cls_name == "DagsterDbtCliRuntimeError":
        return dbt_reason(cause.message)
    return f"{cause.cls_name}: {cause.message.strip().splitlines()[0] if cause.message.strip() else ''}"


def build_report(
    instance: dg.DagsterInstance, run_id: str, selected: list[str], seconds: float, step_assets: dict[str, list[str]]
) -> RunReport:
    run = instance.get_run_by_id(run_id)
    report = RunReport(
        run_id=run_id,
        success=bool(run and run.status == dg.DagsterRunStatus.SUCCESS),
        seconds=seconds,
        selected=selected,
        step_assets=step_assets,
    )
    for record in run_records(instance, run_id, _EVENTS):
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            key = mat.asset_key.to_user_string()
            outcome = report.assets.setdefault(key, AssetOutcome(key))
            values = metadata_values(dict(mat.metadata))
            rows = values.get("dagster/row_count")
            if mat.partition:
                outcome.partitions.append(mat.partition)
            if isinstance(rows, int):
                outcome.rows = rows
                if mat.partition:
                    outcome.rows_by_partition[mat.partition] = rows
            outcome.metadata = {**outcome.metadata, **values}
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.asset_check_evaluation_data
            report.checks.append(
                CheckOutcome(
                    asset=evaluation.asset_key.to_user_string(),
                    name=evaluation.check_name,
                    passed=evaluation.passed,
                    severity=evaluation.severity.value,
                    description=evaluation.description,
                    metadata=metadata_values(dict(evaluation.metadata)),
                )
            )
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE and event.step_key:
            report.failures[event.step_key] = _failure_reason(event)
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            for step, reason in worker_failures(event).items():
                report.failures.setdefault(step, reason)
    for outcome in report.assets.values():
        # A range run records one materialization per partition. An asset that counts its rows
        # per partition puts each day's on its own and the window's total and metadata on the
        # last (gates/publish.py); any other carries one count for the whole window.
        if WINDOW_ROWS in outcome.metadata:
            outcome.rows = outcome.metadata[WINDOW_ROWS]
            outcome.metadata.pop("dagster/row_count", None)
        else:
            outcome.rows_by_partition.clear()
    return report


# dagster-celery's run failure lists each step whose worker returned no events: `[step]: error`.
_WORKER_FAILURE = re.compile(r"^\[(?P<step>[^\]\s]+)\]: (?P<reason>.+)$", re.MULTILINE)


def worker_failures(event: dg.DagsterEvent) -> dict[str, str]:
    """Steps a run failure names as lost by their worker (e.g. a worker killed mid-step: no step
    failure event is ever written), each with the first line of its error."""
    data = event.job_failure_data if event.event_specific_data is not None else None
    text = data.error.message if data is not None and data.error is not None else event.message or ""
    return {match["step"]: match["reason"].strip() for match in _WORKER_FAILURE.finditer(text)}
