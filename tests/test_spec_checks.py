"""Load-time checks beyond names: operand kinds, target leakage, model selections and targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_dagster.products import load_line
from tests.conftest import FLIGHTS
from tests.test_spec_errors import line_of, load_error, rel, replace


def features_error(line_dir: Path, old: str, new: str) -> tuple[Path, str]:
    features = line_dir / "features.yaml"
    replace(features, old, new)
    return features, load_error(line_dir)


def test_a_kept_feature_computed_from_the_label_leaks_the_target(line_dir: Path) -> None:
    features, message = features_error(
        line_dir,
        "      carrier: carrier\n",
        "      carrier: carrier\n      late:\n        compare: {column: dep_delay, op: gt, value: 30}\n",
    )
    assert message == (
        f"{rel(features)}: feature_sets.flight_features.features.late: feature 'late' is computed from the label "
        "dep_delay of its own row: it leaks the target (use it through rolling or lag, or set keep: false) "
        f"(line {line_of(features, 'late:')})"
    )


def test_leakage_is_followed_through_intermediate_features(line_dir: Path) -> None:
    features, message = features_error(line_dir, "        keep: false\n", "")
    assert message.startswith(
        f"{rel(features)}: feature_sets.flight_features.features.delayed_15: "
        "feature 'delayed_15' is computed from the label dep_delay of its own row"
    )


def test_history_of_the_label_is_not_leakage(line_dir: Path) -> None:
    # The shipped line keeps origin_delay_rate_7d, a rolling mean of the label over earlier days.
    spec = load_line(line_dir)
    assert "origin_delay_rate_7d" in spec.feature_sets["flight_features"].output_features()


def test_date_part_of_a_number(line_dir: Path) -> None:
    features, message = features_error(
        line_dir, "date_part: {column: scheduled_departure, part: hour}", "date_part: {column: distance, part: hour}"
    )
    assert message == (
        f"{rel(features)}: feature_sets.flight_features.features.sched_hour.date_part: "
        f"'distance' is numeric: date_part needs a timestamp (line {line_of(features, 'column: distance, part')})"
    )


def test_compare_a_string_column_with_a_number(line_dir: Path) -> None:
    features, message = features_error(
        line_dir,
        "      carrier: carrier\n",
        "      carrier: carrier\n      is_big:\n        compare: {column: carrier, op: gt, value: 15}\n",
    )
    assert message == (
        f"{rel(features)}: feature_sets.flight_features.features.is_big.compare: "
        f"'carrier' is string but the value 15 is numeric (line {line_of(features, 'column: carrier, op')})"
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "key: dest, dimension_key: airport_code",
            "key: distance, dimension_key: airport_code",
            "dest_altitude_ft.lookup: 'distance' is numeric but dim_airports.airport_code is string",
        ),
        (
            "dimension_key: airport_code, column: altitude_ft",
            "dimension_key: airport_code, column: airport_code",
            "dest_altitude_ft.lookup: column and dimension_key are both 'airport_code': take another column",
        ),
        (
            "boundaries: [500, 1000, 2000]",
            "boundaries: [500, 1000, 2000], labels: [short, mid, mid, long]",
            "distance_band.bucket: labels must be distinct",
        ),
    ],
    ids=["lookup key of another kind", "lookup of the key itself", "bucket labels repeat"],
)
def test_block_operands(line_dir: Path, old: str, new: str, expected: str) -> None:
    features, message = features_error(line_dir, old, new)
    assert message.startswith(f"{rel(features)}: feature_sets.flight_features.features.{expected} (line ")


def models_error(line_dir: Path, old: str, new: str) -> tuple[Path, str]:
    models = line_dir / "models.yaml"
    replace(models, old, new)
    return models, load_error(line_dir)


def test_target_value_of_another_kind_than_the_label(line_dir: Path) -> None:
    models, message = models_error(
        line_dir, "target: {column: dep_delay, op: gt, value: 15}", "target: {column: dep_delay, op: eq, value: late}"
    )
    assert message == (
        f"{rel(models)}: models.delay_classifier.target.value: the label 'dep_delay' is numeric but 'late' "
        f"is string (line {line_of(models, 'value: late')})"
    )


def test_empty_feature_selection(line_dir: Path) -> None:
    models, message = models_error(line_dir, "flight_features: all", "flight_features: []")
    assert message.startswith(
        f"{rel(models)}: models.delay_classifier.features.flight_features: select at least one feature (or all)"
    )


def test_feature_selected_twice(line_dir: Path) -> None:
    models, message = models_error(line_dir, "flight_features: all", "flight_features: [carrier, origin, carrier]")
    assert message.startswith(
        f"{rel(models)}: models.delay_classifier.features.flight_features: 'carrier' is selected twice"
    )


def test_slice_min_refuses_a_metric_where_lower_is_better(line_dir: Path) -> None:
    models, message = models_error(line_dir, "slice_min: {roc_auc: 0.6}", "slice_min: {log_loss: 0.6}")
    assert message.startswith(
        f"{rel(models)}: models.delay_classifier.promotion.slice_min: log_loss is better when lower: "
        "slice_min takes metrics where higher is better"
    )


def test_without_promotion_rules_the_model_must_beat_the_baseline(line_dir: Path) -> None:
    models = line_dir / "models.yaml"
    text = models.read_text()
    start = text.index("    promotion:")
    end = text.index("    freshness:")
    models.write_text(text[:start] + text[end:])
    spec = load_line(line_dir).models["delay_classifier"]
    assert spec.metrics_to_beat_baseline() == ["roc_auc"]
    assert load_line(FLIGHTS).models["delay_classifier"].metrics_to_beat_baseline() == ["roc_auc", "log_loss"]


def test_openlineage_key_must_be_an_openlineage_variable(line_dir: Path) -> None:
    line_yaml = line_dir / "line.yaml"
    line_yaml.write_text(line_yaml.read_text() + "  openlineage:\n    api_key_env: AWS_SECRET_ACCESS_KEY\n")
    message = load_error(line_dir)
    assert message.startswith(f"{rel(line_yaml)}: line.openlineage: ")
    assert "api_key_env must name an OPENLINEAGE_* variable, got 'AWS_SECRET_ACCESS_KEY'" in message


def test_openlineage_file_stays_inside_the_factory_home(line_dir: Path) -> None:
    line_yaml = line_dir / "line.yaml"
    line_yaml.write_text(line_yaml.read_text() + "  openlineage:\n    file: ../../etc/lineage.jsonl\n")
    assert "file must be a path inside the factory home, got '../../etc/lineage.jsonl'" in load_error(line_dir)
