"""The model loop through the real daemon, on the small synthetic line (tests/test_monitor.py):
built once, a day lands whose inputs and labels are shifted, its drift check fails, the
`label_model_retrain` sensor (run by `dagster-daemon`) requests exactly one retrain with the
failure as its reason, the retrained version goes through promotion, a second shifted day inside
the cooldown requests none, and `factory models history` tells who served when.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.cli import main
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.products.model import PROMOTION_CHECK
from factory_dagster.products.monitor import DRIFT_CHECK
from factory_dagster.products.retrain import REASON_TAG, sensor_name
from factory_dagster.storage.artifacts import ModelRegistry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import REPO, build_all, line_args
from tests.processes import background
from tests.test_monitor import DAYS, write_events, write_line

pytestmark = pytest.mark.e2e

MODEL, SCORES = "label_model", "label_scores"
LANDED, SECOND = "2024-02-09", "2024-02-08"  # the shifted days, landed in that order
TIMEOUT = 240
MONITOR = {  # p < 0.001: 30 calm rows a day raise no false alarm, a shifted day drifts by far
    "drift": {"thresholds": {"ks": 0.001, "chisquare": 0.001}},
    "performance": {"tolerance": {"roc_auc": 0.25}},
    "retrain": {"cooldown": "7d", "minimum_interval_seconds": 5},
}


def land(specs: Path, home: Path, instance: dg.DagsterInstance, day: str) -> None:
    """A day arrives: its source rows, features, scores and realized performance (one run)."""
    from factory_dagster.execution.runner import execute
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line

    defs = build_definitions(specs=[load_line(specs)], home=home)
    keys = [dg.AssetKey.from_user_string(k) for k in ("raw/events", "event_features", SCORES, f"{SCORES}_performance")]
    result = execute(defs, instance, keys, tags={"dagster/partition": day}, log_dir=home / "logs")
    assert result.success, result.failures


def latest_drift(instance: dg.DagsterInstance) -> dg.AssetCheckEvaluation:
    (record,) = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(SCORES), DRIFT_CHECK), limit=1
    )
    assert isinstance(record.evaluation, dg.AssetCheckEvaluation)
    return record.evaluation


def retrain_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    return [r for r in instance.get_runs() if REASON_TAG in r.tags]


def wait_for(condition, what: str, log: Path):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(1)
    raise AssertionError(f"{what} within {TIMEOUT} s; daemon log:\n{log.read_text()[-3000:]}")


def sensor_skips(instance: dg.DagsterInstance) -> list[str]:
    """The skip reasons of the retrain sensor's ticks, as the daemon stored them (newest first)."""
    states = [s for s in instance.all_instigator_state() if s.instigator_name == sensor_name(MODEL)]
    return [
        tick.skip_reason or ""
        for state in states
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    ]


def promotion_decision(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dg.AssetCheckEvaluation:
    """How the retrained version was judged before serving: today the model's own promotion check
    (thresholds and the baseline). With champion/challenger slots this is the slot's paired
    comparison of challenger and champion on the same held-out window."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(MODEL), PROMOTION_CHECK), limit=5
    )
    (record,) = [r for r in records if r.run_id == run.run_id]
    assert isinstance(record.evaluation, dg.AssetCheckEvaluation)
    return record.evaluation


def test_a_shifted_day_retrains_once_through_the_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, home, dagster_home = tmp_path / "root", tmp_path / "home", tmp_path / "dagster_home"
    write_events(root / "events.csv", shifted_days=set(), days=DAYS - 2)  # the last two days have not come yet
    specs = write_line(root, MONITOR, gated=True, end="latest")
    line = specs / "line.yaml"  # the retrain sensor runs where the line's automation is enabled
    line.write_text(line.read_text().replace("automation:\n    enabled: false", "automation:\n    enabled: true"))
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    ensure_dagster_home(FactoryHome(home))
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    _, _, report = build_all(home, specs, instance=instance)
    assert report.success, report.failures
    registry = ModelRegistry(FactoryHome(home).model_dir(MODEL))
    champion = registry.current()
    assert champion is not None and latest_drift(instance).passed  # the build's days are like training

    # The day lands shifted: inputs and labels move; its drift check fails (WARN, the day is published).
    write_events(root / "events.csv", shifted_days={LANDED})
    land(specs, home, instance, LANDED)
    drift = latest_drift(instance)
    assert not drift.passed and drift.partition == LANDED and drift.severity == dg.AssetCheckSeverity.WARN

    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: factory_dagster.definitions\n"
        f"      attribute: defs\n      working_directory: {REPO}\n"
    )
    env = {
        **os.environ,
        "FACTORY_HOME": str(home),
        "FACTORY_ROOT": str(root),
        "FACTORY_LINES": "synth",
        "DAGSTER_HOME": str(dagster_home),
    }
    log = tmp_path / "daemon.log"
    daemon = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", str(workspace)]
    with background(daemon, env, REPO, log):
        (run,) = wait_for(lambda: retrain_runs(instance), "no retrain requested", log)
        finished = wait_for(lambda: (r := instance.get_run_by_id(run.run_id)) and r.is_finished and r, "retrain", log)
        assert finished.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]

        # A second shifted day inside the cooldown: seen by the sensor, no second retrain.
        write_events(root / "events.csv", shifted_days={LANDED, SECOND})
        land(specs, home, instance, SECOND)
        assert not latest_drift(instance).passed
        skip = wait_for(
            lambda: next((s for s in sensor_skips(instance) if "in cooldown until" in s), None), "no cooldown tick", log
        )
    assert len(retrain_runs(instance)) == 1
    # the reason is the newest failure of the landed day: its drift, or its realized-performance decay
    assert re.match(
        rf"{SCORES}( {DRIFT_CHECK}: dataset drift on |_performance performance_decay: ){LANDED}",
        finished.tags[REASON_TAG],
    )
    assert finished.asset_selection == {dg.AssetKey(MODEL)}
    assert "failure(s) seen, in cooldown until" in skip and SECOND in skip

    # The retrained version went through promotion and serves; the history tells who served when.
    decision = promotion_decision(instance, finished)
    challenger = registry.current()
    # a new version: trained on the window ending at the landed day
    assert challenger is not None and decision.passed and challenger.version != champion.version
    assert LANDED in challenger.details["test_window"] and LANDED not in champion.details["test_window"]
    assert decision.metadata["model_version"].value == challenger.version  # type: ignore[union-attr]
    (began, until, first), (switched, still, second) = registry.serving_history()
    assert (first.version, second.version, until, still) == (champion.version, challenger.version, switched, None)
    capsys.readouterr()
    assert main(["models", "history", MODEL, "--home", str(home), *line_args(specs)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " .. " in line]  # metrics may wrap
    assert len(lines) == 2
    assert lines[0].startswith(f"{began:%Y-%m-%d %H:%M:%S} .. {switched:%Y-%m-%d %H:%M:%S}")
    assert champion.version in lines[0]
    assert lines[1].startswith(f"{switched:%Y-%m-%d %H:%M:%S} .. now") and challenger.version in lines[1]
