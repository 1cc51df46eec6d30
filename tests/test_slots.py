"""Serving slots: the spec's one-line errors, the paired bootstrap against an independent
recomputation (sklearn on explicitly resampled rows), and a small daily line through Dagster where
a stump, a logistic regression and its twin compete: the first to pass serves, a clearly better
candidate takes over, an identical one never does, challengers score in shadow, the history
answers who served when and rollback works on the slot."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.metrics import mean_squared_error, roc_auc_score

from factory_dagster.cli import main
from factory_dagster.execution.runner import execute, partition_tags
from factory_dagster.factory import build_definitions
from factory_dagster.products import load_line
from factory_dagster.products.model import PROMOTION_CHECK
from factory_dagster.products.paired import paired_bootstrap
from factory_dagster.products.performance import MONITORING
from factory_dagster.products.slot import SlotVerdict, rollback_slot, slot_registry
from factory_dagster.products.training import BOOTSTRAP_SAMPLES, input_frame, score_frame
from factory_dagster.spec.errors import SpecError, SpecErrors
from factory_dagster.storage.artifacts import ArtifactIntegrityError, ModelRegistry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import line_args
from tests.synthetic import OWNER
from tests.test_monitor import DAYS, write_line

SLOT = "label_slot"


def model(features: dict, estimator: dict) -> dict:
    return {
        "description": "Predicts the label.",
        "owner": OWNER,
        "features": features,
        "target": {"column": "label", "op": "eq", "value": 1},
        "estimator": estimator,
        "split": {"train_days": 25, "test_days": 10, "end": "2024-02-04"},
        "seed": 1,
    }


def slot_line(root: Path, slot: dict | None = None, monitor: dict | None = None, **models: dict) -> Path:
    """The monitor test's daily line (label_model: a logistic regression on grp and value) with a
    decision stump on value (label_stump), an identical twin of label_model (label_twin), and
    the slot `label_slot` of the three (or `slot`), scored by label_scores (`monitor`: label_model's)."""
    specs = write_line(root, monitor)
    spec = yaml.safe_load((specs / "line.yaml").read_text())
    strong = spec["models"]["label_model"]
    spec["models"] |= {
        "label_stump": model(
            {"event_features": ["value"]}, {"name": "DecisionTreeClassifier", "params": {"max_depth": 1}}
        ),
        "label_twin": dict(strong),
        **models,
    }
    spec["slots"] = {
        SLOT: slot
        or {
            "description": "Who scores the events.",
            "owner": OWNER,
            "members": ["label_stump", "label_model", "label_twin"],
            "metric": "roc_auc",
            "confidence": 0.95,
        }
    }
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return specs


def errors_of(specs: Path) -> list[str]:
    with pytest.raises((SpecError, SpecErrors)) as caught:
        load_line(specs)
    errors = caught.value.errors if isinstance(caught.value, SpecErrors) else [caught.value]
    return [e.message.replace(str(specs / "line.yaml"), "line.yaml") for e in errors]


def slot_entry(members: list[str], metric: str = "roc_auc") -> dict:
    return {"description": "A slot.", "owner": OWNER, "members": members, "metric": metric}


def test_slot_spec_errors_name_the_file_key_reason_and_line(tmp_path: Path) -> None:
    assert errors_of(slot_line(tmp_path / "a", slot_entry(["label_model", "nope", "label_model"]))) == [
        "line.yaml: slots.label_slot.members[1]: unknown model 'nope' (known: label_model, label_stump, label_twin) "
        "(line 97)",
        "line.yaml: slots.label_slot.members[2]: 'label_model' is listed twice (line 98)",
    ]
    assert errors_of(slot_line(tmp_path / "b", slot_entry(["label_model", "label_stump"], "rmse"))) == [
        f"line.yaml: slots.label_slot.metric: 'rmse' is not among {member}'s metrics "
        "(roc_auc, log_loss, precision, recall, f1, accuracy, brier) (line 98)"
        for member in ("label_model", "label_stump")
    ]
    other_target = model({"event_features": ["value"]}, {"name": "LogisticRegression"})
    other_target["target"] = {"column": "label", "op": "eq", "value": 0}
    assert errors_of(slot_line(tmp_path / "c", slot_entry(["label_model", "label_zero"]), label_zero=other_target)) == [
        "line.yaml: slots.label_slot.members[1]: label_zero predicts label eq 0 but label_model predicts label eq 1: "
        "a slot's members share one target (line 114)"
    ]
    specs = slot_line(tmp_path / "d", slot_entry(["label_model", "label_stump"]))
    spec = yaml.safe_load((specs / "line.yaml").read_text())
    spec["slots"]["second_slot"] = slot_entry(["label_twin", "label_model"])
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert errors_of(specs) == [
        "line.yaml: slots.second_slot.members[1]: 'label_model' already competes in slot 'label_slot' (line 104)"
    ]
    spec["slots"] = {"label_model": slot_entry(["label_twin", "label_stump"])}  # a slot's name is an asset's
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert errors_of(specs) == [
        "line.yaml: slots.label_model: duplicate key 'label_model': already used by a model (line 92)"
    ]
    spec["slots"] = {SLOT: {**slot_entry(["label_model"]), "confidence": 1.5}}
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    assert errors_of(specs) == [
        "line.yaml: slots.label_slot.members: a slot needs at least two members to compete (got 1) (line 95)",
        "line.yaml: slots.label_slot.confidence: must be less than 1 (got 1.5) (line 98)",
    ]


def test_a_line_without_slots_scores_as_before(tmp_path: Path) -> None:
    spec = load_line(write_line(tmp_path / "root"))
    assert spec.slots == {}
    assert list(spec.kind_of("label_scores").columns(spec, "label_scores")) == [  # type: ignore[union-attr]
        "id",
        "day",
        "score",
        "model_name",
        "model_version",
        "scored_at",
        "predicted",
    ]
    sloted = load_line(slot_line(tmp_path / "slotted"))
    assert "role" in sloted.kind_of("label_scores").columns(sloted, "label_scores")  # type: ignore[union-attr]
    assert sloted.kind_of("label_scores").row_key(sloted, "label_scores") == ["id", "model_name", "model_version"]  # type: ignore[union-attr]


def resampled_indices(rows: int, seed: int) -> list[np.ndarray]:
    """The bootstrap's resamples as row indices: the same seeded multinomial draws, expanded."""
    counts = np.random.default_rng(seed).multinomial(rows, np.full(rows, 1 / rows), size=BOOTSTRAP_SAMPLES)
    return [np.repeat(np.arange(rows), c) for c in counts]


def oracle_interval(metric, y, a, b, seed: int, confidence: float, sign: float = 1.0) -> tuple[float, float]:
    differences = [sign * (metric(y[i], a[i]) - metric(y[i], b[i])) for i in resampled_indices(len(y), seed)]
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return float(low), float(high)


def test_the_paired_interval_equals_sklearn_on_the_resampled_rows() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400).astype(float)
    good = np.clip(0.5 + 0.35 * (y - 0.5) + rng.normal(0, 0.25, 400), 0, 1)
    bad = np.clip(0.5 + 0.1 * (y - 0.5) + rng.normal(0, 0.25, 400), 0, 1)
    c = paired_bootstrap("roc_auc", "classification", y, good, bad, 0.5, 0.9, 11)
    assert (c.low, c.high) == pytest.approx(oracle_interval(roc_auc_score, y, good, bad, 11, 0.9), abs=1e-12)
    assert c.candidate == pytest.approx(roc_auc_score(y, good)) and c.champion == pytest.approx(roc_auc_score(y, bad))
    assert c.rows == 400 and c.resamples == BOOTSTRAP_SAMPLES and c.beats(0.0) and not c.beats(c.high)

    target = rng.normal(0, 1, 300)
    close, far = target + rng.normal(0, 0.5, 300), target + rng.normal(0, 1.0, 300)
    rmse = lambda t, p: float(np.sqrt(mean_squared_error(t, p)))  # noqa: E731
    r = paired_bootstrap("rmse", "regression", target, close, far, 0.5, 0.95, 3)
    # rmse is better when lower: the improvement is the champion's minus the candidate's
    assert (r.low, r.high) == pytest.approx(oracle_interval(rmse, target, close, far, 3, 0.95, -1.0), abs=1e-12)
    assert r.improvement == pytest.approx(rmse(target, far) - rmse(target, close)) and r.beats(0.0)


def test_identical_models_are_never_promoted_and_a_worse_one_never_wins() -> None:
    rng = np.random.default_rng(8)
    y = rng.integers(0, 2, 500).astype(float)
    scores = np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 500), 0, 1)
    worse = np.clip(scores + rng.normal(0, 0.3, 500), 0, 1)
    for seed in range(5):
        same = paired_bootstrap("roc_auc", "classification", y, scores, scores.copy(), 0.5, 0.95, seed)
        assert (same.low, same.high, same.improvement) == (0.0, 0.0, 0.0) and not same.beats(0.0)
        assert not paired_bootstrap("roc_auc", "classification", y, worse, scores, 0.5, 0.95, seed).beats(0.0)
        assert not paired_bootstrap("log_loss", "classification", y, worse, scores, 0.5, 0.95, seed).beats(0.0)


def run(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path, *keys: str) -> None:
    selected = [dg.AssetKey.from_user_string(k) for k in keys]
    report = execute(defs, instance, selected, tags=partition_tags(defs, selected), log_dir=home / "logs")
    assert report.success, report.failures


def promotion(instance: dg.DagsterInstance, name: str) -> dg.AssetCheckEvaluation:
    (record,) = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey(name), PROMOTION_CHECK), limit=1
    )
    assert isinstance(record.evaluation, dg.AssetCheckEvaluation)
    return record.evaluation


def values(evaluation: dg.AssetCheckEvaluation) -> dict:
    return {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}


@pytest.fixture(scope="module")
def competed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dg.DagsterInstance]:
    """The stump trained first (the slot's first champion), then the regression, then its twin,
    then every day scored: (line folder, factory home, instance)."""
    from factory_dagster.execution.instance import factory_instance

    root = tmp_path_factory.mktemp("slots")
    specs, home = slot_line(root / "root", monitor={"performance": {"tolerance": {"roc_auc": 0.25}}}), root / "home"
    defs = build_definitions(specs=[load_line(specs)], home=home)
    instance = factory_instance(FactoryHome(home))
    run(defs, instance, home, "raw/events", "event_features")
    for name in ("label_stump", "label_model", "label_twin"):
        run(defs, instance, home, name)
    run(defs, instance, home, "label_scores")
    run(defs, instance, home, "label_scores_performance")
    return specs, home, instance


def test_the_first_passes_by_its_rules_a_better_one_takes_over_a_twin_never(
    competed: tuple[Path, Path, dg.DagsterInstance],
) -> None:
    _, home, instance = competed
    factory_home = FactoryHome(home)
    first = promotion(instance, "label_stump")
    assert first.passed and values(first)["slot_promoted"] is True and values(first)["slot_role"] == "champion"
    assert values(first)["slot_verdict"] == "first champion of slot label_slot (its promotion rules met)"

    better = values(promotion(instance, "label_model"))
    assert better["slot_promoted"] is True and better["slot/window"] == "2024-01-26..2024-02-04"
    assert better["slot/rows"] == 10 * 30  # every test row, scored by both
    # the oracle: both stored artifacts rescore the stored test days; sklearn judges each resample
    features = pl.read_parquet(factory_home.dataset_dir("features", "event_features") / "*.parquet")
    test = features.filter(pl.col("day").is_between(dt.date(2024, 1, 26), dt.date(2024, 2, 4))).sort("id")
    y = (test.get_column("label") == 1).cast(pl.Float64).to_numpy()
    scores = {}
    for name in ("label_stump", "label_model"):
        registry = ModelRegistry(factory_home.model_dir(name))
        pipeline, record = registry.load()
        scores[name] = score_frame(pipeline, "classification", input_frame(test, record.details["features"]))
    low, high = oracle_interval(roc_auc_score, y, scores["label_model"], scores["label_stump"], 0, 0.95)
    assert (better["slot/interval_low"], better["slot/interval_high"]) == pytest.approx((low, high), abs=1e-9)
    assert better["slot/roc_auc_candidate"] == pytest.approx(roc_auc_score(y, scores["label_model"]))
    assert better["slot/roc_auc_champion"] == pytest.approx(roc_auc_score(y, scores["label_stump"]))
    assert low > 0
    assert f"| 95% interval | {low:+.4f}..{high:+.4f} |" in better["slot_comparison"]
    assert "| rows (both scored) | 300 |" in better["slot_comparison"]

    twin = promotion(instance, "label_twin")
    twin_values = values(twin)
    assert twin.passed and twin_values["slot_promoted"] is False  # it serves in shadow, not the slot
    assert (twin_values["slot/interval_low"], twin_values["slot/interval_high"]) == (0.0, 0.0)
    assert twin_values["slot_role"] == "challenger"  # it did not take the slot: the check says so first
    assert twin_values["slot_verdict"].startswith(
        "did not take slot label_slot (interval not above 0), serves it in shadow as a challenger: roc_auc "
    )

    champion = slot_registry(factory_home, SLOT).champion()
    assert champion is not None and champion.model == "label_model"


def test_challengers_score_every_day_in_shadow(competed: tuple[Path, Path, dg.DagsterInstance]) -> None:
    _, home, instance = competed
    factory_home = FactoryHome(home)
    scored = pl.read_parquet(factory_home.dataset_dir("predictions", "label_scores") / "*.parquet")
    features = pl.read_parquet(factory_home.dataset_dir("features", "event_features") / "*.parquet")
    served = scored.filter(pl.col("role") == "champion")
    per_day = lambda f: dict(f.group_by("day").len().iter_rows())  # noqa: E731
    assert per_day(served) == per_day(features) and len(per_day(features)) == DAYS
    versions = {m: ModelRegistry(factory_home.model_dir(m)).current().version for m in ("label_stump", "label_model")}  # type: ignore[union-attr]
    assert set(scored.select("model_name", "model_version", "role").unique().iter_rows()) == {
        ("label_model", versions["label_model"], "champion"),
        ("label_stump", versions["label_stump"], "challenger"),
        ("label_twin", versions["label_model"], "challenger"),  # the same bytes: the same version
    }
    assert scored.height == 3 * features.height
    # the twin's shadow scores are the champion's: the same model on the same rows
    twin = scored.filter(pl.col("model_name") == "label_twin").sort("id").get_column("score")
    assert twin.to_list() == served.sort("id").get_column("score").to_list()
    event = instance.get_latest_materialization_event(dg.AssetKey("label_scores"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert getattr(metadata["champion"], "value", None) == f"label_model@{versions['label_model']}"
    # realized performance judges the predictions' model on its own rows, not every member's
    realized = pl.read_parquet(factory_home.dataset_dir(MONITORING, "label_scores_performance") / "*.parquet")
    assert realized.height == DAYS and set(realized.get_column("model_version")) == {versions["label_model"]}
    assert set(realized.get_column("labelled_rows")) == {30}


def test_history_and_rollback_work_on_the_slot(
    competed: tuple[Path, Path, dg.DagsterInstance], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs, home, _ = competed
    registry = slot_registry(FactoryHome(home), SLOT)
    stump, strong = (t.version for t in registry.history())
    args = ["--home", str(home), *line_args(specs)]
    assert main(["models", "history", SLOT, *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [re.findall(r"label_\w+@[0-9a-f]{12}", line)[0] for line in lines] == [
        f"label_stump@{stump}",
        f"label_model@{strong}",
    ]
    assert "beat label_stump@" in lines[1] and " .. now " in lines[1]
    today = dt.datetime.now(dt.UTC).date()
    assert main(["models", "history", SLOT, "--on", str(today), *args]) == 0
    assert capsys.readouterr().out.strip() == f"{SLOT} on {today}: label_stump@{stump}, label_model@{strong}"

    assert main(["rollback", SLOT, *args]) == 0
    assert capsys.readouterr().out.strip() == (
        f"{SLOT}: now serving label_stump@{stump} (was label_model@{strong}); the next scoring run uses it"
    )
    # the next scoring run serves the stump; the regression, whose input grp the stump's frame
    # lacks, scores the same rows in shadow from its own
    run(build_definitions(specs=[load_line(specs)], home=home), competed[2], home, "label_scores")
    scored = pl.read_parquet(FactoryHome(home).dataset_dir("predictions", "label_scores") / "*.parquet")
    roles = dict(scored.group_by("model_name", "role").len().select("model_name", "role").iter_rows())
    assert roles == {"label_stump": "champion", "label_model": "challenger", "label_twin": "challenger"}
    by_model = {m: part.sort("id").get_column("id").to_list() for (m,), part in scored.group_by("model_name")}
    assert by_model["label_stump"] == by_model["label_model"] == by_model["label_twin"]
    with pytest.raises(SystemExit):
        main(["rollback", SLOT, "--to", "cafe00000000", *args])
    assert (
        f"slot {SLOT} was never served by cafe00000000 (served: label_stump@{stump}, label_model@{strong})"
        in capsys.readouterr().err
    )
    assert main(["rollback", SLOT, "--to", f"label_model@{strong}", *args]) == 0
    capsys.readouterr()
    assert [(t.model, t.reason) for t in registry.history()][2:] == [
        ("label_stump", f"rolled back from label_model@{strong}"),
        ("label_model", f"rolled back from label_stump@{stump}"),
    ]


def test_a_tampered_champion_blocks_the_candidate_and_keeps_the_slot(tmp_path: Path) -> None:
    from factory_dagster.execution.instance import factory_instance

    specs, home = slot_line(tmp_path / "root", slot_entry(["label_stump", "label_model"])), tmp_path / "home"
    defs = build_definitions(specs=[load_line(specs)], home=home)
    instance = factory_instance(FactoryHome(home))
    run(defs, instance, home, "raw/events", "event_features", "label_stump")
    stump = ModelRegistry(FactoryHome(home).model_dir("label_stump"))
    record = stump.current()
    assert record is not None
    (stump.directory / record.file).write_bytes(b"not the model")
    selected = [dg.AssetKey("label_model")]
    execute(defs, instance, selected, log_dir=home / "logs")
    evaluation = promotion(instance, "label_model")
    assert not evaluation.passed
    assert evaluation.description is not None and evaluation.description.startswith(
        "model label_model: cannot compare with the slot's champion: "
    )
    assert "does not match the recorded" in evaluation.description
    assert ModelRegistry(FactoryHome(home).model_dir("label_model")).current() is None
    champion = slot_registry(FactoryHome(home), SLOT).champion()
    assert champion is not None and champion.model == "label_stump"
    with pytest.raises(ArtifactIntegrityError):
        stump.load()


def test_slot_verdict_metadata_without_a_comparison() -> None:
    verdict = SlotVerdict(SLOT, True, "first champion")
    assert verdict.metadata() == {
        "slot": SLOT,
        "slot_verdict": "first champion",
        "slot_promoted": True,
        "slot_role": "champion",
    }


def test_a_slot_scores_the_latest_days_in_shadow_and_its_gate_keys_rows_by_scorer(tmp_path: Path) -> None:
    """An unpartitioned line (the latest 10 days scored): both members trained in one build, the
    scores' suite keying rows by (id, model_name, model_version) as the kind declares."""
    from tests.conftest import build_all
    from tests.synthetic import key_by_scorer, make_factory

    specs = make_factory(tmp_path / "root")
    (specs / "slots.yaml").write_text(
        yaml.safe_dump(
            {
                "models": {
                    "label_stump": model(
                        {"event_features": ["value"]}, {"name": "DecisionTreeClassifier", "params": {"max_depth": 1}}
                    )
                    | {"split": {"train_days": 25, "test_days": 10}},
                },
                "slots": {SLOT: slot_entry(["label_model", "label_stump"])},
            }
        )
    )
    key_by_scorer(tmp_path / "root" / "expectations" / "synth" / "label_scores.json")
    home = tmp_path / "home"
    _, _, report = build_all(home, specs)
    assert report.success, report.failures
    factory_home = FactoryHome(home)
    champion = slot_registry(factory_home, SLOT).champion()
    assert champion is not None
    scored = pl.read_parquet(factory_home.dataset_dir("predictions", "label_scores") / "*.parquet")
    features = pl.read_parquet(factory_home.dataset_dir("features", "event_features") / "*.parquet")
    latest = features.get_column("day").max()
    assert isinstance(latest, dt.date)
    last_days = features.filter(pl.col("day") > latest - dt.timedelta(days=10))
    served = scored.filter(pl.col("role") == "champion")
    assert sorted(served.get_column("id")) == sorted(last_days.get_column("id"))
    assert set(served.get_column("model_name")) == {champion.model}
    shadow = scored.filter(pl.col("role") == "challenger")
    assert set(shadow.get_column("model_name")) == {"label_model", "label_stump"} - {champion.model}
    assert sorted(shadow.get_column("id")) == sorted(last_days.get_column("id"))


def test_a_champion_that_left_the_slot_is_replaced_by_the_next_member_to_pass(tmp_path: Path) -> None:
    from factory_dagster.execution.instance import factory_instance

    specs, home = slot_line(tmp_path / "root", slot_entry(["label_stump", "label_model"])), tmp_path / "home"
    instance = factory_instance(FactoryHome(home))
    run(build_definitions(specs=[load_line(specs)], home=home), instance, home, "raw/events", "event_features")
    run(build_definitions(specs=[load_line(specs)], home=home), instance, home, "label_stump")
    spec = yaml.safe_load((specs / "line.yaml").read_text())
    spec["slots"][SLOT]["members"] = ["label_model", "label_twin"]
    (specs / "line.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    defs = build_definitions(specs=[load_line(specs)], home=home)
    selected = [dg.AssetKey("label_scores")]
    report = execute(defs, instance, selected, tags=partition_tags(defs, selected), log_dir=home / "logs")
    assert not report.success
    stump = slot_registry(FactoryHome(home), SLOT).champion()
    assert stump is not None and stump.model == "label_stump"
    assert (
        f"label_scores: cannot load model label_model: slot {SLOT} is served by label_stump@{stump.version}, "
        f"no longer a member: train a member (or factory rollback {SLOT} --to one that served it)"
    ) in str(report.failures)
    run(defs, instance, home, "label_model")
    verdict = values(promotion(instance, "label_model"))
    assert verdict["slot_promoted"] is True
    assert verdict["slot_verdict"] == (
        f"champion of slot {SLOT} (its promotion rules met): the champion label_stump@{stump.version} is no "
        "longer a member"
    )
    model_version = ModelRegistry(FactoryHome(home).model_dir("label_model")).current()
    assert model_version is not None
    with pytest.raises(LookupError) as refused:  # only a current member's version serves again
        rollback_slot(load_line(specs), FactoryHome(home), instance, SLOT, f"label_stump@{stump.version}")
    assert str(refused.value) == (
        f"slot {SLOT} was never served by label_stump@{stump.version} (served: label_model@{model_version.version})"
    )
