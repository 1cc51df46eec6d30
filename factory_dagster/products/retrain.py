"""Retraining triggers: a sensor per monitored model that requests a retrain through the daemon
when its drift or realized-performance check fails, at most once per cooldown.

A failure counts once (the cursor remembers the latest evaluation seen) and only when it is newer
than the model's last training (a retrain since then has already answered it). Manual and
scheduled retrains are untouched: they are ordinary materializations of the model.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import dagster as dg

from factory_dagster.products.monitor import DRIFT_CHECK, NOT_JUDGED
from factory_dagster.products.performance import PERFORMANCE_CHECK, SUFFIX
from factory_dagster.spec import FactorySpec

REASON_TAG = "factory/retrain_reason"


def sensor_name(model: str) -> str:
    return f"{model}_retrain"


def watched_checks(spec: FactorySpec, model: str) -> list[dg.AssetCheckKey]:
    """The failing checks that request a retrain of `model`: drift on its predictions, decay on
    their realized performance (as its `monitor.retrain.on` says)."""
    monitor = spec.models[model].monitor
    keys = []
    for name, predictions in spec.predictions.items():
        if predictions.model != model:
            continue
        if "drift" in monitor.retrain.on and monitor.drift.enabled:
            keys.append(dg.AssetCheckKey(dg.AssetKey(name), DRIFT_CHECK))
        if "decay" in monitor.retrain.on and monitor.performance.enabled and predictions.partitions:
            keys.append(dg.AssetCheckKey(dg.AssetKey(f"{name}{SUFFIX}"), PERFORMANCE_CHECK))
    return keys


@dataclass
class Failure:
    check: dg.AssetCheckKey
    timestamp: float
    description: str

    def __str__(self) -> str:
        return f"{self.check.asset_key.to_user_string()} {self.check.name}: {self.description}"


def decide(
    failures: list[Failure], trained_at: float | None, requested_at: float | None, now: float, cooldown: dt.timedelta
) -> tuple[bool, str]:
    """(request a retrain?, why): a failure newer than the last training, outside the cooldown
    since the last retrain this sensor requested."""
    fresh = [f for f in failures if trained_at is None or f.timestamp > trained_at]
    if not fresh:
        return False, "no drift or decay newer than the model's last training"
    if requested_at is not None and now - requested_at < cooldown.total_seconds():
        until = dt.datetime.fromtimestamp(requested_at + cooldown.total_seconds(), dt.UTC)
        return False, f"{len(fresh)} failure(s) seen, in cooldown until {until:%Y-%m-%d %H:%M} UTC: {fresh[-1]}"
    return True, str(max(fresh, key=lambda f: f.timestamp))


def build_retrain_sensor(spec: FactorySpec, model: str) -> dg.SensorDefinition | None:
    retrain = spec.models[model].monitor.retrain
    checks = watched_checks(spec, model)
    if not retrain.enabled or not checks:
        return None

    @dg.sensor(
        name=sensor_name(model),
        target=dg.AssetSelection.assets(model),
        minimum_interval_seconds=retrain.minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING
        if spec.line.automation.enabled
        else dg.DefaultSensorStatus.STOPPED,
        description=f"Retrains {model} when "
        + " or ".join(f"{c.asset_key.to_user_string()} {c.name}" for c in checks)
        + f" fails, at most once per {retrain.cooldown}.",
    )
    def _retrain(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        state = json.loads(context.cursor) if context.cursor else {}
        # Evaluations are remembered by storage id: their timestamps have whole seconds, so two
        # evaluations in one second would hide each other behind a timestamp cursor.
        seen, requested = state.get("seen_id", 0), state.get("requested")
        failures: list[Failure] = []
        latest = seen
        for key in checks:
            for record in context.instance.event_log_storage.get_asset_check_execution_history(key, limit=50):
                evaluation = record.evaluation
                if record.id <= seen or not isinstance(evaluation, dg.AssetCheckEvaluation):
                    continue
                latest = max(latest, record.id)
                if not evaluation.passed and NOT_JUDGED not in evaluation.metadata:
                    failures.append(Failure(key, record.create_timestamp, (evaluation.description or "")[:200]))
        event = context.instance.get_latest_materialization_event(dg.AssetKey(model))
        now = dt.datetime.now(dt.UTC).timestamp()
        retrain_now, reason = decide(failures, event.timestamp if event else None, requested, now, retrain.cooldown)
        cursor = json.dumps({"seen_id": latest, "requested": now if retrain_now else requested})
        if not retrain_now:
            return dg.SensorResult(skip_reason=reason, cursor=cursor)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{model}-retrain-{int(now)}",
                    asset_selection=[dg.AssetKey(model)],
                    tags={REASON_TAG: reason[:250]},
                )
            ],
            cursor=cursor,
        )

    return _retrain
