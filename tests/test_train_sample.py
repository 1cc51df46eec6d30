"""`max_train_rows`: a time-stratified, seeded sample bounds a model's training set."""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from factory_dagster.products import load_line
from factory_dagster.products.model import ModelSpec
from factory_dagster.products.training import stratified_sample, train_model
from factory_dagster.spec import SpecError
from tests.test_spec_errors import line_of, rel, replace

START = dt.date(2024, 1, 1)


def daily_frame(seed: int = 3, days: int = 40) -> pl.DataFrame:
    """Rows on `days` days, 5 to 400 a day, with a value and a label that depends on it."""
    rng = np.random.default_rng(seed)
    per_day = rng.integers(5, 400, days)
    day = [START + dt.timedelta(days=d) for d, count in enumerate(per_day.tolist()) for _ in range(count)]
    value = rng.normal(0, 1, len(day))
    return pl.DataFrame(
        {
            "ts": [dt.datetime.combine(d, dt.time(12)) for d in day],
            "value": value,
            "label": (value + rng.normal(0, 1, len(day)) > 0).astype(int),
            "row": np.arange(len(day)),
        }
    )


def test_each_day_keeps_its_share_within_one_row() -> None:
    frame = daily_frame()
    days = frame.get_column("ts").dt.date()
    sample = stratified_sample(frame, days, 1_000, seed=11)
    assert sample.height == 1_000
    available = frame.group_by(pl.col("ts").dt.date()).len().sort("ts")
    kept = dict(sample.group_by(pl.col("ts").dt.date()).len().iter_rows())
    for day, rows in available.iter_rows():
        exact = rows * 1_000 / frame.height
        assert abs(kept.get(day, 0) - exact) < 1, (day, kept.get(day, 0), exact)
    assert sample.get_column("row").is_sorted()  # in frame order
    assert sample.get_column("row").n_unique() == 1_000  # no row twice


def test_the_sample_is_deterministic_for_a_seed() -> None:
    frame = daily_frame()
    days = frame.get_column("ts").dt.date()
    first = stratified_sample(frame, days, 500, seed=5).get_column("row").to_list()
    assert stratified_sample(frame, days, 500, seed=5).get_column("row").to_list() == first
    assert stratified_sample(frame, days, 500, seed=6).get_column("row").to_list() != first
    assert stratified_sample(frame, days, frame.height, seed=5).height == frame.height  # a bound above: all


def model_spec(max_train_rows: int | None) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "description": "x",
            "owner": "team:x",
            "features": {"fs": ["value"]},
            "target": {"column": "label", "op": "eq", "value": 1},
            "estimator": {"name": "DecisionTreeClassifier", "params": {"max_depth": 3}},
            "split": {"train_days": 30, "test_days": 10},
            "seed": 4,
            "max_train_rows": max_train_rows,
            "monitor": {"drift": {"enabled": False}},
        }
    )


def test_the_model_trains_on_exactly_the_bounded_rows() -> None:
    frame = daily_frame()
    train_days = frame.filter(pl.col("ts").dt.date() < START + dt.timedelta(days=30))
    bounded = train_model(model_spec(700), frame, "ts", ["value"])
    assert bounded.train_rows == 700
    assert bounded.train_rows_available == train_days.height
    assert bounded.pipeline[-1].tree_.n_node_samples[0] == 700  # the fitted tree's root saw 700 rows
    whole = train_model(model_spec(None), frame, "ts", ["value"])
    assert whole.train_rows == whole.train_rows_available == train_days.height
    assert whole.pipeline[-1].tree_.n_node_samples[0] == train_days.height
    assert bounded.test_rows == whole.test_rows  # the test window is never sampled


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "must be greater than 0 (got 0)"),
        ("-5", "must be greater than 0 (got -5)"),
        ("lots", "expected an integer, got 'lots'"),
    ],
)
def test_a_bad_max_train_rows_is_one_line(line_dir: Path, value: str, reason: str) -> None:
    models = line_dir / "models.yaml"
    replace(models, "    seed: ", f"    max_train_rows: {value}\n    seed: ")
    with pytest.raises(SpecError) as caught:
        load_line(line_dir)
    assert str(caught.value) == (
        f"{rel(models)}: models.delay_classifier.max_train_rows: {reason} (line {line_of(models, 'max_train_rows')})"
    )


@pytest.mark.parametrize("bound", [700, None])
def test_training_reads_only_its_rows_and_trains_the_same_model(bound: int | None) -> None:
    """`training_rows` collects the test window and the train window's sample from a scan;
    training on them gives the model, data hash and counts of training on the whole frame."""
    from factory_dagster.products.training import training_rows

    frame = daily_frame(days=50)  # 10 days before the train window: never read
    spec = model_spec(bound)
    rows, available = training_rows(spec, frame.lazy(), "ts")
    whole = train_model(spec, frame, "ts", ["value"])
    assert rows.height == whole.train_rows + whole.test_rows < frame.height
    assert rows.columns == frame.columns
    read = train_model(spec, rows, "ts", ["value"], train_rows_available=available)
    assert available == whole.train_rows_available
    assert (read.train_rows, read.test_rows, read.data_sha256) == (whole.train_rows, whole.test_rows, whole.data_sha256)
    assert read.metrics == whole.metrics
    assert pickle.dumps(read.pipeline) == pickle.dumps(whole.pipeline)
