"""Each kind of spec error fails at load with one line: file, key path, reason (and line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_dagster.cli import main
from factory_dagster.products import load_line
from factory_dagster.spec import SpecError
from factory_dagster.spec.errors import display_path
from tests.conftest import line_args


def line_of(path: Path, needle: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        if needle in text:
            return number
    raise AssertionError(f"{needle!r} not in {path}")


def rel(path: Path) -> str:
    return display_path(path)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def load_error(line_dir: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load_line(line_dir)
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_shipped_line_is_valid(line_dir: Path) -> None:
    spec = load_line(line_dir)
    assert set(spec.models) == {"delay_classifier", "delay_logit"}
    assert spec.slots["delay_risk"].members == ["delay_classifier", "delay_logit"]
    assert spec.feature_sets["flight_features"].source == "fct_flights"
    assert "fct_flights" in spec.dbt_models


def test_unknown_feature_set(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "flight_features: all", "weathr: all")
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_classifier.features: unknown feature set 'weathr' "
        f"(known: flight_features) (line {line_of(models, 'weathr: all')})"
    )


def test_unknown_source_product(line_dir: Path) -> None:
    features = line_dir / "features.yaml"
    replace(features, "source: fct_flights", "source: fct_flight")
    message = load_error(line_dir)
    assert message.startswith(
        f"{rel(features)}: feature_sets.flight_features.source: unknown data product 'fct_flight' (known: "
    )
    assert "fct_flights" in message and message.endswith(f"(line {line_of(features, 'source: fct_flight')})")


def test_unknown_column_in_feature(line_dir: Path) -> None:
    features = line_dir / "features.yaml"
    replace(features, "precip_in: precip_in", "precip_in: precipitation")
    message = load_error(line_dir)
    assert message.startswith(
        f"{rel(features)}: feature_sets.flight_features.features.precip_in.column: "
        "unknown column or feature 'precipitation' (columns of fct_flights: "
    )


def test_bad_estimator_name(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "name: HistGradientBoostingClassifier", "name: XGBoostClassifier")
    message = load_error(line_dir)
    assert message.startswith(
        f"{rel(models)}: models.delay_classifier.estimator.name: unknown estimator 'XGBoostClassifier' "
        "(allowed: DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreesClassifier, "
    )
    assert message.endswith(f"(line {line_of(models, 'XGBoostClassifier')})")


def test_bad_estimator_parameter(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "learning_rate: 0.1,", "learning_rate: 0.1, n_jobs: -1,")
    message = load_error(line_dir)
    assert message.startswith(
        f"{rel(models)}: models.delay_classifier.estimator.params: unknown field 'n_jobs' (allowed: learning_rate, "
    )


def test_estimator_for_the_wrong_task(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "name: HistGradientBoostingClassifier", "name: Ridge")
    replace(
        models, "params: {learning_rate: 0.1, max_iter: 200, max_leaf_nodes: 31, early_stopping: false}", "params: {}"
    )
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_classifier.estimator.name: Ridge is a regression estimator but the "
        f"target defines a classification task (line {line_of(models, 'name: Ridge')})"
    )


def test_duplicate_key_across_files(line_dir: Path) -> None:
    (line_dir / "more_models.yaml").write_text("models:\n  delay_classifier:\n    description: again\n")
    models = line_dir / "models.yaml"
    assert load_error(line_dir) == (
        f"{rel(line_dir / 'more_models.yaml')}: models.delay_classifier: duplicate key 'delay_classifier' "
        f"(also defined in models.yaml, line {line_of(models, 'delay_classifier:')}) (line 2)"
    )


def test_duplicate_key_in_one_file(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "    seed: 42\n", "    seed: 42\n    seed: 7\n")
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_classifier.seed: duplicate key 'seed' "
        f"(first defined on line {line_of(models, 'seed: 42')}) (line {line_of(models, 'seed: 7')})"
    )


def test_missing_field(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "    owner: team:ml-platform\n", "")
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_classifier: missing required field 'owner' "
        f"(line {line_of(models, 'delay_classifier:')})"
    )


def test_wrong_type(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "seed: 42", "seed: forty-two")
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_classifier.seed: expected an integer, got 'forty-two' "
        f"(line {line_of(models, 'seed: forty-two')})"
    )


def test_wrong_choice(line_dir: Path) -> None:
    features = line_dir / "features.yaml"
    replace(features, "part: weekday", "part: fortnight")
    message = load_error(line_dir)
    assert message.startswith(
        f"{rel(features)}: feature_sets.flight_features.features.weekday.date_part.part: expected one of "
    )
    assert "got 'fortnight'" in message


def test_unknown_field_lists_allowed_ones(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "    seed: 42\n", "    seed: 42\n    sead: 1\n")
    message = load_error(line_dir)
    assert message.startswith(f"{rel(models)}: models.delay_classifier: unknown field 'sead' (allowed: ")
    assert "seed" in message


def test_invalid_yaml(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    models.write_text("models:\n  m: [unclosed\n")
    message = load_error(line_dir)
    assert message.startswith(f"{rel(models)}: invalid YAML: ")


def test_a_spec_file_that_is_not_utf8(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    models.write_bytes(models.read_bytes().replace(b"seed: 42", b"seed: 42 # r\xe9sum\xe9", 1))
    message = load_error(line_dir)
    line = models.read_bytes().split(b"\xe9")[0].count(b"\n") + 1
    assert message == f"{rel(models)}: not UTF-8 text: byte 0xe9 on line {line}; save the file as UTF-8"


def test_several_errors_are_all_reported(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    replace(models, "seed: 42", "seed: x")
    replace(models, "    owner: team:ml-platform\n", "")
    with pytest.raises(SpecError) as caught:
        load_line(line_dir)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert any("missing required field 'owner'" in line for line in lines)
    assert any("seed: expected an integer" in line for line in lines)


def test_cli_prints_one_line_without_traceback(line_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = line_dir / "models.yaml"
    replace(models, "flight_features: all", "weathr: all")
    with pytest.raises(SystemExit) as exited:
        main(["validate", *line_args(line_dir)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert "unknown feature set 'weathr' (known: flight_features)" in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "select: delay_classifier",
            "select: delay_clasifier",
            "schedules.weekly_retrain.select",
            "'delay_clasifier' selects no asset",
        ),
        (
            "select: raw/flights*",
            "select: raw/flight_s*",
            "jobs.flights_daily.select",
            "'raw/flight_s*' selects no asset partitioned by 'daily'",
        ),
    ],
)
def test_a_selection_that_selects_nothing_fails_at_load(
    line_dir: Path, tmp_path: Path, old: str, new: str, key: str, reason: str
) -> None:
    from factory_dagster.factory import build_definitions

    time = line_dir / "time.yaml"
    replace(time, old, new)
    with pytest.raises(SpecError) as caught:
        build_definitions(specs=[load_line(line_dir)], home=tmp_path / "home")
    assert str(caught.value) == f"{rel(time)}: {key}: {reason} (line {line_of(time, new)})"


def test_a_declared_name_that_a_derived_asset_takes_is_refused(line_dir: Path) -> None:
    """`<predictions>_performance` is derived (realized performance): a model may not take its key."""
    models = line_dir / "models.yaml"
    text = models.read_text()
    start = text.index("  delay_classifier:")
    copy = text[start:].replace("  delay_classifier:", "  delay_predictions_performance:", 1)
    models.write_text(text + copy)
    assert load_error(line_dir) == (
        f"{rel(models)}: models.delay_predictions_performance: duplicate key 'delay_predictions_performance': "
        f"also the key of a derived performance_monitor (line {line_of(models, 'delay_predictions_performance:')})"
    )
