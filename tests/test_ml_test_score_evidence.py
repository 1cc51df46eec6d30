"""Mon1, Mon2, Mon5, Mon6 and D6 score from what the factory recorded, and say which: gate
evaluations on the source, the feature set and the scores, the trainings' recorded metrics and
inputs, Dagster's step statistics. One planted defect per test drops its score, with the reason.

The synthetic monitored line (tests/test_monitor.py), gated, is built once; the defects follow
in one sequence on it (a feature declared but not trained, then trained; a broken serving gate).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.lineage import ml_test_score
from factory_dagster.lineage.graph import StepRun
from factory_dagster.lineage.ml_test_score import REGRESSION_FACTOR, _step_regression
from tests.conftest import build_all
from tests.test_monitor import write_line

pytestmark = pytest.mark.e2e


def scores(specs: Path, home: Path, instance: dg.DagsterInstance) -> dict[str, ml_test_score.TestResult]:
    from factory_dagster.factory import build_definitions, build_gates
    from factory_dagster.lineage.assess import assess
    from factory_dagster.products import load_line

    spec = load_line(specs)
    suites = {k: g.suite for k, g in build_gates(spec).items()}
    result = assess(spec, build_definitions(specs=[spec], home=home), instance, suites)
    return {t.id: t for t in result.scores[0].tests}


def gate_runs(instance: dg.DagsterInstance, asset: str) -> list[dg.AssetCheckEvaluation]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), GATE_CHECK), limit=50
    )
    return [r.evaluation for r in records if isinstance(r.evaluation, dg.AssetCheckEvaluation)]


def materialize(specs: Path, home: Path, instance: dg.DagsterInstance, *keys: str, day: str | None = None) -> None:
    from factory_dagster.execution.runner import execute, partition_tags
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line

    defs = build_definitions(specs=[load_line(specs)], home=home)
    selected = [dg.AssetKey(k) for k in keys]
    tags = {"dagster/partition": day} if day else partition_tags(defs, selected)
    result = execute(defs, instance, selected, tags=tags, log_dir=home / "logs")
    assert result.success, result.failures


def without_suite(specs: Path, tmp: Path, suite: str) -> Path:
    """A copy of the line whose `suite` is gone (the asset is not gated)."""
    copy = tmp / "root"
    shutil.copytree(specs.parent.parent, copy, symlinks=True)
    (copy / "expectations" / "synth" / f"{suite}.json").unlink()
    return copy / "lines" / "synth"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dg.DagsterInstance]:
    root = tmp_path_factory.mktemp("evidence")
    specs = write_line(root / "root", {"performance": {"tolerance": {"roc_auc": 0.25}}}, gated=True)
    saved = dict(os.environ)  # its own instance: another module's build may have exported DAGSTER_HOME
    os.environ["DAGSTER_HOME"] = str(root / "dagster")
    try:
        _, instance, report = build_all(root / "home", specs)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert report.success, report.failures
    return specs, root / "home", instance


def test_the_monitoring_tests_and_d6_read_the_recorded_evidence(
    built: tuple[Path, Path, dg.DagsterInstance], tmp_path: Path
) -> None:
    specs, home, instance = built
    first = scores(specs, home, instance)

    # Mon1: the source's gate ran (as many evaluations as Dagster recorded) -> 1; no gate -> 0
    assert len(gate_runs(instance, "raw/events")) == 1
    assert first["Mon1"].score == 1.0
    assert first["Mon1"].evidence == (
        "every raw source's gate ran and recorded its verdicts: raw/events: 1 evaluation(s), last passed"
    )
    ungated = scores(without_suite(specs, tmp_path / "mon1", "raw.events"), home, instance)["Mon1"]
    assert (ungated.score, ungated.evidence) == (0.0, "no gate on raw/events: a changed source notifies no one")

    # Mon2: one build's gate evaluation covered the training inputs and the scored ones
    assert first["Mon2"].score == 1.0
    assert first["Mon2"].evidence.startswith("event_features: one gate evaluation (")
    assert "covered the training and scored inputs" in first["Mon2"].evidence

    # Mon5: every metric the training recorded is finite, and the score gate passed; no score gate -> 0.5
    event = instance.get_latest_materialization_event(dg.AssetKey("label_model"))
    assert event is not None and event.asset_materialization is not None
    recorded = [k for k in event.asset_materialization.metadata if k.startswith("metric/")]
    assert len(recorded) == 7
    assert first["Mon5"].score == 1.0
    assert first["Mon5"].evidence == (
        "the last training recorded 7 finite metrics; the last score gates of label_scores passed (not null, in range)"
    )
    unchecked = scores(without_suite(specs, tmp_path / "mon5", "label_scores"), home, instance)["Mon5"]
    assert (unchecked.score, unchecked.evidence) == (
        0.5,
        "the last training recorded 7 finite metrics; scores of label_scores are not gated for NaN or range",
    )

    # Mon6: the figures are Dagster's step statistics; one training has nothing to compare with -> 0.5
    (training,) = instance.get_run_step_stats(event.run_id, step_keys=["label_model"])
    seconds = training.end_time - training.start_time  # type: ignore[operator]
    rows = int(event.asset_materialization.metadata["train_rows"].value) + int(  # type: ignore[arg-type]
        event.asset_materialization.metadata["test_rows"].value  # type: ignore[arg-type]
    )
    assert rows == 35 * 30
    assert first["Mon6"].score == 0.5
    assert first["Mon6"].evidence.startswith(
        f"label_model {seconds / rows * 1000:.3f} s per 1,000 rows ({seconds:.1f} s, {rows} rows): "
        "no earlier run of its size to compare with yet"
    )

    # D6: one training, no feature added yet -> not measured (0.5)
    assert (first["D6"].score, first["D6"].evidence) == (
        0.5,
        "no feature added across 1 recorded training(s): lead time not measured yet "
        "(a feature is one YAML entry from the building-block vocabulary)",
    )
    # planted: `amount` declared in the spec, the model not retrained -> pending (0.5, named)
    specs = write_line(
        specs.parent.parent, {"performance": {"tolerance": {"roc_auc": 0.25}}}, True, ("grp", "value", "amount")
    )
    pending = scores(specs, home, instance)["D6"]
    assert pending.score == 0.5 and pending.evidence.startswith("declared but in no trained version yet: amount (")
    # retrained with it: the addition is measured between the two trainings -> 1
    materialize(specs, home, instance, "event_features", "label_model")
    second = scores(specs, home, instance)
    history = instance.fetch_materializations(dg.AssetKey("label_model"), limit=2).records
    hours = (history[0].timestamp - history[1].timestamp) / 3600
    assert second["D6"].score == 1.0
    assert "amount added: served by the training of " in second["D6"].evidence
    assert f", {hours:.1f} h after the one without it (within 7 days)" in second["D6"].evidence

    # Mon6 now compares the second training with the first, by Dagster's figures
    rates = []
    for record in history:
        (stats,) = instance.get_run_step_stats(record.run_id, step_keys=["label_model"])
        meta = record.asset_materialization.metadata  # type: ignore[union-attr]
        n = int(meta["train_rows"].value) + int(meta["test_rows"].value)  # type: ignore[arg-type]
        rates.append((stats.end_time - stats.start_time) / n * 1000)  # type: ignore[operator]
    regressed = rates[0] > REGRESSION_FACTOR * rates[1]
    assert f"label_model {rates[0]:.3f} s per 1,000 rows" in second["Mon6"].evidence
    assert f"the median {rates[1]:.3f} of 1 earlier run(s) of its size" in second["Mon6"].evidence
    assert ("computing performance regressed" in second["Mon6"].evidence) == regressed

    # Mon2, planted: the serving inputs of a shifted day break an invariant after the training -> 0.5
    suite_file = specs.parent.parent / "expectations" / "synth" / "event_features.json"
    suite = json.loads(suite_file.read_text())
    suite["expectations"].append(
        {
            "type": "expect_column_mean_to_be_between",
            "kwargs": {"column": "value", "min_value": 8, "max_value": 12},
            "meta": {},
            "severity": "warning",
        }
    )
    suite_file.write_text(json.dumps(suite))
    materialize(specs, home, instance, "event_features", day="2024-02-09")
    latest = gate_runs(instance, "event_features")[0]
    assert not latest.passed and latest.severity == dg.AssetCheckSeverity.WARN
    broken = scores(specs, home, instance)["Mon2"]
    assert broken.score == 0.5
    assert broken.evidence.startswith("the serving inputs of event_features broke its invariants (")
    assert "failed (WARN)" in broken.evidence and "value" in broken.evidence


def test_a_step_slower_per_row_than_twice_its_usual_is_a_regression() -> None:
    def run(seconds: float, rows: int) -> StepRun:
        return StepRun("r", 0.0, seconds, rows)

    usual = [run(1.0, 1000), run(3.0, 1000), run(2.0, 1000)]  # median 2 s per 1,000 rows
    assert _step_regression([run(4.0, 1000), *usual])[0] == "within"
    state, figure = _step_regression([run(4.2, 1000), *usual])
    assert state == "regressed" and "4.200 s per 1,000 rows" in figure and "the median 2.000 of 3" in figure
    # a run 10x larger is not compared with small ones; a run without rows is not timed
    assert _step_regression([run(50.0, 10_000), *usual])[0] == "alone"
    assert _step_regression([StepRun("r", 0.0, 1.0, None)]) == ("untimed", "")
