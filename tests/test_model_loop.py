"""The model loop through the real daemon, on the small synthetic line (tests/test_monitor.py)
with a serving slot of two members (its logistic regression and a decision stump on the same
features): built once, a day lands whose inputs and labels are shifted, its drift check fails, the
`label_model_retrain` sensor (run by `dagster-daemon`) requests exactly one retrain with the
failure as its reason, the retrained version is judged by the slot's paired comparison with the
champion, a second shifted day inside the cooldown requests none and is scored by the champion and
the challengers in shadow, and `factory models history SLOT` tells who served when.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from factory_dagster.cli import main
from factory_dagster.execution.instance import ensure_dagster_home
from factory_dagster.products.model import PROMOTION_CHECK
from factory_dagster.products.monitor import DRIFT_CHECK
from factory_dagster.products.retrain import REASON_TAG, sensor_name
from factory_dagster.products.slot import slot_registry
from factory_dagster.products.training import input_frame, score_frame
from factory_dagster.storage.artifacts import ModelRegistry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import REPO, build_all, line_args
from tests.processes import background, wait_until
from tests.synthetic import OWNER, key_by_scorer
from tests.test_monitor import DAYS, write_events, write_line
from tests.test_slots import oracle_interval

pytestmark = pytest.mark.e2e

MODEL, STUMP, SLOT, SCORES = "label_model", "label_stump", "label_slot", "label_scores"
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


def sensor_skips(instance: dg.DagsterInstance) -> list[str]:
    """The skip reasons of the retrain sensor's ticks, as the daemon stored them (newest first)."""
    states = [s for s in instance.all_instigator_state() if s.instigator_name == sensor_name(MODEL)]
    return [
        tick.skip_reason or ""
        for state in states
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=20)
    ]


def add_slot(specs: Path) -> None:
    """A decision stump on label_model's features and split (no monitor of its own), the slot
    of the two (its scores gate keys rows by scorer), and the line's automation enabled (the
    retrain sensor runs where it is)."""
    line = specs / "line.yaml"
    spec = yaml.safe_load(line.read_text())
    regression = spec["models"][MODEL]
    spec["models"][STUMP] = {k: v for k, v in regression.items() if k != "monitor"} | {
        "estimator": {"name": "DecisionTreeClassifier", "params": {"max_depth": 1}}
    }
    spec["slots"] = {
        SLOT: {"description": "Who scores the events.", "owner": OWNER, "members": [MODEL, STUMP], "metric": "roc_auc"}
    }
    spec["line"]["automation"]["enabled"] = True
    line.write_text(yaml.safe_dump(spec, sort_keys=False))
    key_by_scorer(specs.parents[1] / "expectations" / "synth" / f"{SCORES}.json")


def slot_verdict(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict:
    """How the retrained version was judged before serving (its promotion check in that run):
    its own rules, then the slot's paired comparison with the champion; plain metadata values."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(MODEL), PROMOTION_CHECK), limit=5
    )
    (record,) = [r for r in records if r.run_id == run.run_id]
    assert isinstance(record.evaluation, dg.AssetCheckEvaluation) and record.evaluation.passed
    return {k: getattr(v, "value", v) for k, v in record.evaluation.metadata.items()}


def paired_oracle(home: FactoryHome, window: str, candidate: tuple[str, str], champion: tuple[str, str]) -> dict:
    """The paired comparison recomputed from the stored features of `window` and both stored
    artifacts, with sklearn's roc_auc on every resample of the rows."""
    start, end = (dt.date.fromisoformat(d) for d in window.split(".."))
    features = pl.read_parquet(home.dataset_dir("features", "event_features") / "*.parquet")
    rows = features.filter(pl.col("day").is_between(start, end) & pl.col("label").is_not_null()).sort("id")
    y = (rows.get_column("label") == 1).cast(pl.Float64).to_numpy()
    scores = []
    for model, version in (candidate, champion):
        pipeline, record = ModelRegistry(home.model_dir(model)).load(version)
        scores.append(score_frame(pipeline, "classification", input_frame(rows, record.details["features"])))
    low, high = oracle_interval(roc_auc_score, y, scores[0], scores[1], 0, 0.95)
    improvement = roc_auc_score(y, scores[0]) - roc_auc_score(y, scores[1])
    return {"rows": len(y), "low": low, "high": high, "improvement": improvement}


def test_a_shifted_day_retrains_once_through_the_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, home, dagster_home = tmp_path / "root", tmp_path / "home", tmp_path / "dagster_home"
    write_events(root / "events.csv", shifted_days=set(), days=DAYS - 2)  # the last two days have not come yet
    specs = write_line(root, MONITOR, gated=True, end="latest")
    add_slot(specs)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    factory_home = FactoryHome(home)
    ensure_dagster_home(factory_home)
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    _, _, report = build_all(home, specs, instance=instance)
    assert report.success, report.failures
    registry, slot = ModelRegistry(factory_home.model_dir(MODEL)), slot_registry(factory_home, SLOT)
    first = registry.current()
    champion = slot.champion()
    # the regression beats the stump, whichever of the two was judged first
    assert first is not None and champion is not None and (champion.model, champion.version) == (MODEL, first.version)
    assert latest_drift(instance).passed  # the build's days are like training

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
        (run,) = wait_until(lambda: retrain_runs(instance), "no retrain requested", TIMEOUT, log)
        finished = wait_until(
            lambda: (r := instance.get_run_by_id(run.run_id)) and r.is_finished and r, "retrain", TIMEOUT, log
        )
        assert finished.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
        retrained = registry.current()
        assert retrained is not None and retrained.version != first.version
        verdict = slot_verdict(instance, finished)
        # the oracle reads the features the retrain was judged on, before the next day lands
        oracle = paired_oracle(
            factory_home, verdict["slot/window"], (MODEL, retrained.version), (champion.model, champion.version)
        )

        # A second shifted day inside the cooldown: seen by the sensor, no second retrain.
        write_events(root / "events.csv", shifted_days={LANDED, SECOND})
        land(specs, home, instance, SECOND)
        assert not latest_drift(instance).passed
        skip = wait_until(
            lambda: next((s for s in sensor_skips(instance) if "in cooldown until" in s), None),
            "no cooldown tick",
            TIMEOUT,
            log,
        )
    assert len(retrain_runs(instance)) == 1
    # the reason is the newest failure of the landed day: its drift, or its realized-performance decay
    assert re.match(
        rf"{SCORES}( {DRIFT_CHECK}: dataset drift on |_performance performance_decay: ){LANDED}",
        finished.tags[REASON_TAG],
    )
    assert finished.asset_selection == {dg.AssetKey(MODEL)}
    assert "failure(s) seen, in cooldown until" in skip and SECOND in skip

    # The retrained version (its test window ends at the landed day) met its own rules and was
    # compared with the champion on that window, row by row: the interval decides.
    assert LANDED in retrained.details["test_window"] and LANDED not in first.details["test_window"]
    assert verdict["slot/window"] == retrained.details["test_window"]
    assert verdict["model_version"] == retrained.version and verdict["slot"] == SLOT
    assert verdict["slot_champion"] == f"{MODEL}@{first.version}"
    assert verdict["slot/rows"] == oracle["rows"] > 0
    assert oracle["rows"] == 9 * 30  # ten test days, one of which (SECOND) has not landed yet
    assert verdict["slot/improvement"] == pytest.approx(oracle["improvement"], abs=1e-12)
    assert (verdict["slot/interval_low"], verdict["slot/interval_high"]) == pytest.approx(
        (oracle["low"], oracle["high"]), abs=1e-9
    )
    promoted = oracle["low"] > 0
    assert verdict["slot_promoted"] is promoted
    # a retrain on the same days, one of them broken, is no clear improvement: the champion stays
    assert not promoted and verdict["slot_role"] == "challenger"
    assert verdict["slot_verdict"].startswith(
        f"did not take slot {SLOT} (interval not above 0), serves it in shadow as a challenger: roc_auc "
    )
    assert slot.champion() == champion

    # The second day was scored by the champion and, in shadow, by every member's own served version.
    stump = ModelRegistry(factory_home.model_dir(STUMP)).current()
    assert stump is not None
    day = pl.read_parquet(factory_home.dataset_dir("predictions", SCORES) / f"{SECOND}.parquet")
    assert set(day.select("model_name", "model_version", "role").unique().iter_rows()) == {
        (MODEL, first.version, "champion"),
        (MODEL, retrained.version, "challenger"),
        (STUMP, stump.version, "challenger"),
    }
    ids = {role: sorted(part.get_column("id")) for (role,), part in day.group_by("role")}
    assert ids["champion"] == sorted(set(ids["challenger"])) and len(ids["challenger"]) == 2 * len(ids["champion"])
    assert len(ids["champion"]) == 30

    # The history tells who served the slot when, as the slot's registry recorded it.
    history = slot.serving_history()
    assert [(t.model, t.version) for _, _, t in history][-1] == (MODEL, first.version)
    capsys.readouterr()
    assert main(["models", "history", SLOT, "--home", str(home), *line_args(specs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(history)
    for line, (began, until, tenure) in zip(lines, history, strict=True):
        span = f"{began:%Y-%m-%d %H:%M:%S} .. {f'{until:%Y-%m-%d %H:%M:%S}' if until else 'now':19}"
        assert line == f"{span}  {tenure.model}@{tenure.version}  {tenure.reason}"
    today = dt.datetime.now(dt.UTC).date()
    assert main(["models", "history", SLOT, "--on", str(today), "--home", str(home), *line_args(specs)]) == 0
    served = ", ".join(f"{t.model}@{t.version}" for _, _, t in history)
    assert capsys.readouterr().out.strip() == f"{SLOT} on {today}: {served}"
