"""A model declared only in YAML appears as an asset and materializes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

from factory_dagster.execution.runner import execute
from factory_dagster.factory import build_definitions
from tests.conftest import Build, copy_line

pytestmark = pytest.mark.e2e

NEW_MODEL = """
models:
  delay_weather_logit:
    description: A linear challenger on schedule and weather features only.
    owner: team:ml-research
    tags: {stage: experiment}
    features:
      flight_features: [sched_hour, weekday, carrier, origin, precip_in, visibility_mi, wind_speed_mph]
    target: {column: dep_delay, op: gt, value: 15}
    estimator:
      name: LogisticRegression
      params: {C: 0.5, max_iter: 300}
    split: {train_days: 120, test_days: 30, end: 2013-10-31}
    seed: 7
    metrics: [roc_auc, log_loss, recall]
    promotion:
      beat_baseline: [roc_auc]

predictions:
  delay_weather_logit_predictions:
    description: The challenger's scores for the last week.
    owner: team:ml-research
    model: delay_weather_logit
    score: {last_days: 7}
"""


def test_new_model_from_yaml_materializes(flights_build: Build, tmp_path: Path) -> None:
    spec_dir = copy_line(tmp_path / "factory")
    (spec_dir / "challenger.yaml").write_text(NEW_MODEL)
    defs = build_definitions(spec_dir, home=flights_build.home)
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("delay_weather_logit"))
    assert node.group_name == "flights" and node.owners == ["team:ml-research"]  # the line's group
    assert node.tags.get("stage") == "experiment" and node.tags.get("factory/line") == "flights"
    assert node.parent_keys == {dg.AssetKey("flight_features")}
    assert dg.AssetKey("delay_weather_logit") in graph.get(dg.AssetKey("delay_weather_logit_predictions")).parent_keys

    keys = [dg.AssetKey("delay_weather_logit"), dg.AssetKey("delay_weather_logit_predictions")]
    report = execute(defs, flights_build.instance, keys, log_dir=tmp_path)
    assert report.success, report.failures
    meta = report.assets["delay_weather_logit"].metadata
    split = yaml.safe_load(NEW_MODEL)["models"]["delay_weather_logit"]["split"]
    end = split["end"]
    test_start = end - dt.timedelta(days=split["test_days"] - 1)
    train_end = test_start - dt.timedelta(days=1)
    assert meta["test_window"] == f"{test_start}..{end}"
    assert meta["train_window"] == f"{train_end - dt.timedelta(days=split['train_days'] - 1)}..{train_end}"
    assert set(k for k in meta if k.startswith("metric/")) == {"metric/roc_auc", "metric/log_loss", "metric/recall"}
    assert meta["metric/roc_auc"] > meta["baseline/roc_auc"]
    assert meta["dagster/uri"].endswith(".joblib")
    predictions = report.assets["delay_weather_logit_predictions"]
    last_day = (
        pl.read_parquet(flights_build.home / "features" / "flight_features" / "*.parquet")
        .get_column("scheduled_departure")
        .max()
        .date()
    )
    assert predictions.metadata["scored_window"] == f"{last_day - dt.timedelta(days=6)}..{last_day}"  # last_days: 7
    assert predictions.rows > 0
