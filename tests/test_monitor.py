"""The drift monitor through Dagster on a small daily-partitioned line: the model keeps a training
reference, every scored day is judged against it, a shifted day fails the `drift` check (WARN,
or ERROR when declared) with a per-column table and an HTML report, calm days pass."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
from scipy import stats

from factory_dagster.products.monitor import DRIFT_CHECK, NOT_JUDGED, REFERENCE, load_reference, report_path
from factory_dagster.products.performance import PERFORMANCE_CHECK
from factory_dagster.storage.artifacts import ModelRegistry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import build_all
from tests.synthetic import OWNER

START = dt.date(2024, 1, 1)
DAYS = 40
SHIFTED = {"2024-02-08", "2024-02-09"}  # the last two days: value moved, group mix changed
EVENT_COLUMNS = {"id": "int", "day": "date", "grp": "string", "value": "float", "amount": "float", "label": "int"}


def write_events(path: Path, shifted_days: set[str] = SHIFTED, days: int = DAYS) -> None:
    """30 events a day; on `shifted_days` the value moves, the group mix changes and the label
    relation breaks. `amount` (noise) draws from its own generator: the other columns do not move."""
    rng, noise = np.random.default_rng(3), np.random.default_rng(5)
    rows = ["id,day,grp,value,amount,label"]
    for i in range(days * 30):
        day = START + dt.timedelta(days=i // 30)
        shifted = str(day) in shifted_days
        value = float(rng.normal(14 if shifted else 10, 3))
        grp = rng.choice(["A", "B", "C"], p=[0.1, 0.1, 0.8] if shifted else [0.4, 0.4, 0.2])
        label = int(value + rng.normal(0, 2) > 11)
        if shifted:  # the relation to the label broke too: higher values now mean the other class
            label = int(value < 14)
        rows.append(f"{i},{day},{grp},{value:.3f},{noise.normal(50, 10):.3f},{label}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(path)


def write_suites(folder: Path) -> None:
    """Gates on the source (its schema), the feature set and the scores (not null, in [0, 1])."""
    from tests.synthetic import features_suite, key_expectations, scores_suite, suite

    schema = ("expect_table_columns_to_match_set", {"column_set": list(EVENT_COLUMNS)}, "critical")
    expectations: list[Any] = [*key_expectations("id"), schema]
    raw = suite("raw.events", expectations)
    for name, content in (
        ("raw.events", raw),
        ("event_features", features_suite("event_features")),
        ("label_scores", scores_suite("label_scores")),
    ):
        (folder / f"{name}.json").write_text(json.dumps(content))


def write_line(
    root: Path,
    monitor: dict | None = None,
    gated: bool = False,
    features: tuple[str, ...] = ("grp", "value"),
    end: str = "2024-02-04",
    estimator: str = "LogisticRegression",
) -> Path:
    """The synthetic line; `gated`: with GX suites on the source, the features and the scores."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "events.csv").exists():
        write_events(root / "events.csv")
    specs = root / "lines" / "synth"
    specs.mkdir(parents=True, exist_ok=True)
    (root / "expectations" / "synth").mkdir(parents=True, exist_ok=True)
    if gated:
        write_suites(root / "expectations" / "synth")
    (root / "factory.yaml").write_text("lines: [synth]\n")
    model = {
        "description": "Predicts the label.",
        "owner": OWNER,
        "features": {"event_features": "all"},
        "target": {"column": "label", "op": "eq", "value": 1},
        "estimator": {"name": estimator},
        "split": {"train_days": 25, "test_days": 10, "end": end},
        "seed": 1,
        **({"monitor": monitor} if monitor else {}),
    }
    spec = {
        "line": {
            "description": "A synthetic line.",
            "automation": {"enabled": False},
            "openlineage": {"enabled": False},
        },
        "partitions": {"daily": {"start": str(START), "end": str(START + dt.timedelta(days=DAYS))}},
        "sources": {
            "events": {
                "description": "Raw events.",
                "owner": OWNER,
                "file": str(root / "events.csv"),
                "primary_key": ["id"],
                "partition": {"partitions": "daily", "date_column": "day"},
                "columns": EVENT_COLUMNS,
            }
        },
        "feature_sets": {
            "event_features": {
                "description": "What is known about an event.",
                "owner": OWNER,
                "source": "events",
                "entity": "id",
                "timestamp": "day",
                "labels": ["label"],
                "partitions": "daily",
                "features": {name: name for name in features},
            }
        },
        "models": {"label_model": model},
        "predictions": {
            "label_scores": {
                "description": "Scores per day.",
                "owner": OWNER,
                "model": "label_model",
                "partitions": "daily",
            }
        },
    }
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return specs


def drift_evaluations(instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("label_scores"), DRIFT_CHECK), limit=10
    )
    return [r.evaluation for r in records if isinstance(r.evaluation, dg.AssetCheckEvaluation)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dg.DagsterInstance]:
    """The line built once over all its days: (line folder, factory home, instance)."""
    root = tmp_path_factory.mktemp("monitored")
    specs = write_line(root / "root", {"performance": {"tolerance": {"roc_auc": 0.25}}})
    _, instance, report = build_all(root / "home", specs)
    assert report.success, report.failures
    return specs, root / "home", instance


def test_a_shifted_day_fails_the_drift_check_with_a_table_and_a_report(
    built: tuple[Path, Path, dg.DagsterInstance],
) -> None:
    specs, home, instance = built
    (evaluation,) = drift_evaluations(instance)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    assert metadata["batches_scored"] == DAYS
    assert metadata["batch"] in SHIFTED and metadata["dataset_drift"] is True
    drifted_days = {day for day, share in metadata["drift_by_batch"].items() if share >= 0.5}
    assert drifted_days == {"2024-01-25", "2024-01-28", *SHIFTED} == set(metadata["drifted_batches"])
    # the two false alarms are what p < 0.05 on 30 rows a day costs (value and score move together)
    assert metadata["batches_drifted"] == 4

    # the table's statistics are scipy's, on the stored reference and the day's stored features
    registry = ModelRegistry(FactoryHome(home).model_dir("label_model"))
    served = registry.current()
    assert served is not None and REFERENCE in served.attachments
    reference = load_reference(registry, served)
    assert reference is not None and reference.height == 25 * 30  # the train window, all of it
    day = metadata["batch"]
    current = pl.read_parquet(FactoryHome(home).dataset_dir("features", "event_features") / f"{day}.parquet")
    rows = {r.data["column"]: r.data for r in evaluation.metadata["columns"].records}  # type: ignore[attr-defined]
    assert rows["value"]["test"] == "ks" and rows["value"]["drifted"] is True
    oracle = stats.ks_2samp(reference["value"].to_numpy(), current["value"].to_numpy()).pvalue
    assert rows["value"]["statistic"] == pytest.approx(oracle, rel=1e-5)
    assert rows["grp"]["test"] == "chisquare" and rows["grp"]["drifted"] is True
    assert rows["score"]["test"] == "ks"
    # one report per day, drifted columns first
    page = report_path(FactoryHome(home), "synth", "label_scores", day)
    assert Path(metadata["report"]) == page and page.exists()
    assert "Dataset drift" in page.read_text()
    calm = report_path(FactoryHome(home), "synth", "label_scores", "2024-01-05").read_text()
    assert "No dataset drift" in calm

    # a calm day alone passes: the check belongs to each predictions partition
    from factory_dagster.execution.runner import execute
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line

    defs = build_definitions(specs=[load_line(specs)], home=home)
    result = execute(
        defs,
        instance,
        [dg.AssetKey("label_scores")],
        tags={"dagster/partition": "2024-01-20"},
        log_dir=home / "logs",
    )
    assert result.success
    latest = drift_evaluations(instance)[0]
    assert latest.passed and latest.partition == "2024-01-20"
    assert json.loads(json.dumps(latest.metadata["drift_share"].value)) < 0.5  # type: ignore[union-attr]


def performance_evaluations(instance: dg.DagsterInstance) -> list[dg.AssetCheckEvaluation]:
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("label_scores_performance"), PERFORMANCE_CHECK), limit=10
    )
    return [r.evaluation for r in records if isinstance(r.evaluation, dg.AssetCheckEvaluation)]


def test_realized_performance_decays_on_the_days_the_label_relation_broke(
    built: tuple[Path, Path, dg.DagsterInstance],
) -> None:
    from sklearn.metrics import roc_auc_score

    _, root, instance = built
    home = FactoryHome(root)
    (evaluation,) = performance_evaluations(instance)
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.description is not None
    assert [part.split(":")[0] for part in evaluation.description.split("; ")] == sorted(SHIFTED)
    metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    assert (metadata["days_judged"], metadata["days_decayed"]) == (DAYS, 2)

    # each day's realized metric is sklearn's on the stored scores and labels; offline is the registry's
    served = ModelRegistry(home.model_dir("label_model")).current()
    assert served is not None
    for day in ("2024-01-10", *sorted(SHIFTED)):
        stored = pl.read_parquet(home.dataset_dir("monitoring", "label_scores_performance") / f"{day}.parquet")
        scores = pl.read_parquet(home.dataset_dir("predictions", "label_scores") / f"{day}.parquet")
        labels = pl.read_parquet(home.dataset_dir("features", "event_features") / f"{day}.parquet")
        both = scores.join(labels, on="id")
        oracle = roc_auc_score(both["label"].to_numpy() == 1, both["score"].to_numpy())
        row = stored.row(0, named=True)
        assert row["realized_roc_auc"] == pytest.approx(oracle, rel=1e-12)
        assert row["offline_roc_auc"] == served.details["metrics"]["roc_auc"]
        assert row["decay_roc_auc"] == pytest.approx(row["offline_roc_auc"] - oracle)
        assert (row["decay_roc_auc"] > 0.25) == (day in SHIFTED)


def test_declared_error_severity_a_disabled_monitor_and_a_wrong_column(tmp_path: Path) -> None:
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line
    from factory_dagster.spec import SpecError

    def drift_checks(specs: Path, home: Path) -> list[dg.AssetCheckSpec]:
        defs = build_definitions(specs=[load_line(specs)], home=home)
        return [c for c in defs.resolve_assets_def("label_scores").check_specs if c.name == DRIFT_CHECK]

    (error,) = drift_checks(write_line(tmp_path / "e", {"drift": {"severity": "error"}}), tmp_path / "h1")
    assert error.description is not None and "fails (ERROR)" in error.description
    assert error.partitions_def is not None
    assert drift_checks(write_line(tmp_path / "off", {"drift": {"enabled": False}}), tmp_path / "h2") == []
    with pytest.raises(SpecError) as caught:
        load_line(write_line(tmp_path / "bad", {"drift": {"columns": ["valu"], "tests": {"grp": "psi"}}}))
    assert str(caught.value) == (
        f"{tmp_path}/bad/lines/synth/line.yaml: models.label_model.monitor.drift.columns[0]: "
        "'valu' is not an input of the model (inputs: grp, value) (line 61)"
    )
    with pytest.raises(SpecError) as caught:
        load_line(write_line(tmp_path / "metric", {"performance": {"tolerance": {"rmse": 0.1}}}))
    assert str(caught.value).endswith(
        "models.label_model.monitor.performance.tolerance.rmse: 'rmse' is not among the model's metrics "
        "(roc_auc, log_loss, precision, recall, f1, accuracy, brier) (line 61)"
    )


def test_the_ml_test_score_and_td18_read_what_the_monitors_recorded(
    built: tuple[Path, Path, dg.DagsterInstance],
) -> None:
    from factory_dagster.factory import build_definitions, build_gates
    from factory_dagster.lineage.assess import assess
    from factory_dagster.products import load_line

    specs, home, instance = built
    spec = load_line(specs)
    suites = {k: g.suite for k, g in build_gates(spec).items()}
    result = assess(spec, build_definitions(specs=[spec], home=home), instance, suites)
    by_id = {t.id: t for t in result.scores[0].tests}
    latest_drift = drift_evaluations(instance)[0]
    assert by_id["Mon3"].score == (1.0 if latest_drift.passed else 0.5)
    assert "drift check" in by_id["Mon3"].evidence
    assert by_id["Mon7"].score == 0.5 and by_id["Mon7"].evidence.startswith(
        "realized metrics decayed (label_scores_performance): 2024-02-08: roc_auc"
    )
    assert by_id["I2"].score == 1.0 and "promotion check" in by_id["I2"].evidence
    assert by_id["M1"].score == 0.5 and "the last training recorded code version" in by_id["M1"].evidence
    td18 = [f.evidence for f in result.debt.findings if f.rule == "TD18"]
    assert td18 == ["label_model: no freshness policy", "label_scores: no freshness policy"]  # no drift gap


def test_drift_or_decay_requests_one_retrain_then_cools_down(built: tuple[Path, Path, dg.DagsterInstance]) -> None:
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line
    from factory_dagster.products.retrain import REASON_TAG

    specs, home, instance = built
    defs = build_definitions(specs=[load_line(specs)], home=home)
    sensor = defs.resolve_sensor_def("label_model_retrain")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # the line's automation is off

    def tick(cursor: str | None) -> dg.SensorResult:
        result = sensor(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert isinstance(result, dg.SensorResult)
        return result

    first = tick(None)
    (request,) = first.run_requests or []
    assert request.asset_selection == [dg.AssetKey("label_model")]
    assert "label_scores" in request.tags[REASON_TAG]
    again = tick(first.cursor)  # nothing new: the failures were answered once
    assert not again.run_requests and again.skip_reason is not None
    assert "no drift or decay newer" in str(again.skip_reason.skip_message)

    # a new drift failure inside the cooldown is seen, not acted on
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("label_scores"),
            check_name=DRIFT_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="a shifted week",
        )
    )
    cooled = tick(again.cursor)
    assert not cooled.run_requests and "in cooldown until" in str(cooled.skip_reason.skip_message)  # type: ignore[union-attr]
    # the same failure after the cooldown (the last request 8 days ago) retrains again
    state = json.loads(again.cursor or "{}")
    state["requested"] -= 8 * 86400
    retrained = tick(json.dumps(state))
    assert len(retrained.run_requests or []) == 1

    # a drift result that judged nothing (the served version has no reference, e.g. after a rollback
    # to a version trained before monitoring) is no evidence of drift: it never undoes the rollback
    instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("label_scores"),
            check_name=DRIFT_CHECK,
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description="served version v0 has no training reference",
            metadata={NOT_JUDGED: True},
        )
    )
    state = json.loads(retrained.cursor or "{}")
    state["requested"] -= 8 * 86400
    unjudged = tick(json.dumps(state))
    assert not unjudged.run_requests and "no drift or decay newer" in str(unjudged.skip_reason.skip_message)  # type: ignore[union-attr]


def test_an_input_named_like_the_score_is_refused_while_drift_is_monitored() -> None:
    from factory_dagster.products.monitor import SCORE_COLUMN, DriftMonitorSpec, MonitorSpec, check_monitor

    errors = check_monitor(MonitorSpec(), {SCORE_COLUMN, "x"}, ["roc_auc"])
    assert errors == [
        (
            ("monitor", "drift"),
            "an input named 'score' would be confused with the model's score in the drift reference: "
            "rename that feature, or set monitor.drift.enabled: false",
        )
    ]
    assert check_monitor(MonitorSpec(drift=DriftMonitorSpec(enabled=False)), {SCORE_COLUMN}, ["roc_auc"]) == []


def test_a_tampered_reference_is_an_error_result_and_the_predictions_stay(
    built: tuple[Path, Path, dg.DagsterInstance],
) -> None:
    from factory_dagster.execution.runner import execute
    from factory_dagster.factory import build_definitions
    from factory_dagster.products import load_line
    from factory_dagster.storage.artifacts import ModelRegistry

    specs, home, instance = built
    registry = ModelRegistry(FactoryHome(home).root / "models" / "label_model")
    version = registry.current()
    assert version is not None
    path = registry.directory / version.attachments[REFERENCE]["file"]
    original = path.read_bytes()
    path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit flipped
    try:
        defs = build_definitions(specs=[load_line(specs)], home=home)
        result = execute(
            defs,
            instance,
            [dg.AssetKey("label_scores")],
            tags={"dagster/partition": "2024-01-21"},
            log_dir=home / "logs",
        )
    finally:
        path.write_bytes(original)
    assert result.success  # the day was scored and published; only the drift check says why it judged nothing
    latest = drift_evaluations(instance)[0]
    assert not latest.passed and latest.severity == dg.AssetCheckSeverity.ERROR
    assert latest.description is not None and "SHA-256 does not match" in latest.description
    assert latest.metadata[NOT_JUDGED].value is True  # type: ignore[union-attr]


def test_scores_the_gate_blocks_are_not_judged_and_the_gate_says_why(tmp_path: Path) -> None:
    """A blocked scores gate publishes nothing: the drift check reports that it judged nothing
    (no retrain is asked for) and the run's failure is the gate's, not a missing check result."""
    from tests.synthetic import suite

    specs = write_line(tmp_path / "root", gated=True)
    impossible = ("expect_column_values_to_be_between", {"column": "score", "min_value": 2, "max_value": 3}, "critical")
    (tmp_path / "root" / "expectations" / "synth" / "label_scores.json").write_text(
        json.dumps(suite("label_scores", [impossible]))
    )
    _, instance, report = build_all(tmp_path / "home", specs)
    assert not report.success and set(report.failures) == {"label_scores"}
    assert "1 blocking asset check failed" in report.failures["label_scores"]  # the gate, the only blocking one
    evaluations = drift_evaluations(instance)
    assert evaluations and all(not e.passed for e in evaluations)
    assert {e.description for e in evaluations} == {
        "not judged: the scores gate kept the scored rows from being published"
    }
    assert all(e.metadata[NOT_JUDGED].value is True for e in evaluations)  # type: ignore[union-attr]
