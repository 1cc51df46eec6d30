"""The feature vocabulary compiled to polars: each block's values, and no leakage in windows."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from factory_dagster.products.feature_blocks import FeatureComputationError
from factory_dagster.products.feature_set import FeatureSetSpec, compile_features, source_columns


def feature_set(features: dict, labels: list[str] | None = None) -> FeatureSetSpec:
    return FeatureSetSpec.model_validate(
        {
            "description": "test",
            "owner": "team:test",
            "source": "src",
            "entity": "id",
            "timestamp": "ts",
            "labels": labels or [],
            "features": features,
        }
    )


def events(rows: list[tuple[int, str, str, float | None]]) -> pl.LazyFrame:
    """(id, key, 'YYYY-MM-DD HH:MM', value) rows."""
    return pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "key": [r[1] for r in rows],
            "ts": [dt.datetime.fromisoformat(r[2]) for r in rows],
            "value": [r[3] for r in rows],
        },
        schema={"id": pl.Int64, "key": pl.String, "ts": pl.Datetime("us"), "value": pl.Float64},
    ).lazy()


def test_row_blocks() -> None:
    fs = feature_set(
        {
            "hour": {"date_part": {"column": "ts", "part": "hour"}},
            "weekday": {"date_part": {"column": "ts", "part": "weekday"}},
            "value_int": {"cast": {"column": "value", "to": "int"}},
            "band": {"bucket": {"column": "value", "boundaries": [10, 20]}},
            "band_label": {"bucket": {"column": "value", "boundaries": [10, 20], "labels": ["low", "mid", "high"]}},
            "half": {"ratio": {"numerator": "value", "denominator": "two"}},
            "minus_two": {"difference": {"left": "value", "right": "two"}},
            "big": {"compare": {"column": "value", "op": "gt", "value": 15}},
            "key_copy": "key",
        }
    )
    source = events(
        [(1, "a", "2013-01-07 05:30", 5.0), (2, "b", "2013-01-08 23:00", 25.0), (3, "a", "2013-01-09 12:00", None)]
    ).with_columns(pl.lit(2.0).alias("two"))
    out = compile_features(fs, source).collect()
    assert out.columns == [
        "id",
        "ts",
        "hour",
        "weekday",
        "value_int",
        "band",
        "band_label",
        "half",
        "minus_two",
        "big",
        "key_copy",
    ]
    assert out.get_column("hour").to_list() == [5, 23, 12]
    assert out.get_column("weekday").to_list() == [1, 2, 3]  # 2013-01-07 was a Monday
    assert out.get_column("value_int").to_list() == [5, 25, None]
    assert out.get_column("band").to_list() == [0, 2, None]
    assert out.get_column("band_label").to_list() == ["low", "high", None]
    assert out.get_column("half").to_list() == [2.5, 12.5, None]
    assert out.get_column("minus_two").to_list() == [3.0, 23.0, None]
    assert out.get_column("big").to_list() == [False, True, None]
    assert out.get_column("key_copy").to_list() == ["a", "b", "a"]


def test_ratio_by_zero_is_null() -> None:
    fs = feature_set({"r": {"ratio": {"numerator": "value", "denominator": "zero"}}})
    source = events([(1, "a", "2013-01-01 00:00", 3.0)]).with_columns(pl.lit(0.0).alias("zero"))
    assert compile_features(fs, source).collect().get_column("r").to_list() == [None]


def test_lookup_joins_a_dimension_and_refuses_duplicate_keys() -> None:
    fs = feature_set(
        {"alt": {"lookup": {"dimension": "dim", "key": "key", "dimension_key": "code", "column": "altitude"}}}
    )
    source = events([(1, "a", "2013-01-01 00:00", 1.0), (2, "zz", "2013-01-01 01:00", 1.0)])
    dim = pl.DataFrame({"code": ["a", "b"], "altitude": [100, 200]})
    out = compile_features(fs, source, {"dim": dim}).collect()
    assert out.get_column("alt").to_list() == [100, None]
    with pytest.raises(FeatureComputationError, match=r"dim\.code is not unique"):
        compile_features(fs, source, {"dim": pl.concat([dim, dim])}).collect()


def rolling_spec(window: int = 2, agg: str = "mean") -> FeatureSetSpec:
    return feature_set(
        {
            "late": {"compare": {"column": "value", "op": "gt", "value": 15}, "keep": False},
            "late_rate": {"rolling": {"value": "late", "by": "key", "window_days": window, "agg": agg}},
            "prev_day": {"lag": {"value": "value", "by": "key", "days": 1, "agg": "sum"}},
        },
        labels=["value"],
    )


ROWS = [
    (1, "a", "2013-01-01 08:00", 20.0),  # late
    (2, "a", "2013-01-01 09:00", 0.0),
    (3, "a", "2013-01-02 08:00", 30.0),  # late
    (4, "a", "2013-01-03 08:00", 0.0),
    (5, "a", "2013-01-04 08:00", None),  # cancelled: no label
    (6, "b", "2013-01-02 10:00", 40.0),  # late
    (7, "a", "2013-01-05 08:00", 0.0),
]


def test_rolling_uses_only_prior_days() -> None:
    out = compile_features(rolling_spec(window=2), events(ROWS)).collect().sort("id")
    rates = dict(zip(out.get_column("id"), out.get_column("late_rate"), strict=True))
    # Day 1 has no history; day 2 sees day 1 (1 of 2 late); day 3 sees days 1-2 (2 of 3);
    # day 4 sees days 2-3 (1 of 2); day 5 sees days 3-4 (0 of 1: day 4 has no label).
    assert rates[1] is None and rates[2] is None
    assert rates[3] == pytest.approx(0.5)
    assert rates[4] == pytest.approx(2 / 3)
    assert rates[5] == pytest.approx(0.5)
    assert rates[7] == pytest.approx(0.0)
    assert rates[6] is None  # key b has no earlier day
    prev = dict(zip(out.get_column("id"), out.get_column("prev_day"), strict=True))
    assert prev[3] == pytest.approx(20.0) and prev[1] is None and prev[6] is None


def test_rolling_is_blind_to_the_same_day_and_the_future() -> None:
    base = compile_features(rolling_spec(window=3), events(ROWS)).collect().sort("id")
    # Change every label from 2013-01-03 on: features of rows up to that day must not move.
    changed_rows = [(i, k, t, (99.0 if t >= "2013-01-03" else v)) for i, k, t, v in ROWS]
    changed = compile_features(rolling_spec(window=3), events(changed_rows)).collect().sort("id")
    upto = pl.col("ts") < dt.datetime(2013, 1, 4)
    assert (
        base.filter(upto).select("late_rate", "prev_day").equals(changed.filter(upto).select("late_rate", "prev_day"))
    )
    assert not base.select("late_rate").equals(changed.select("late_rate"))


@pytest.mark.parametrize(("agg", "expected"), [("count", 3), ("sum", 2.0), ("min", 0.0), ("max", 1.0)])
def test_rolling_aggregations(agg: str, expected: float) -> None:
    out = compile_features(rolling_spec(window=2, agg=agg), events(ROWS)).collect()
    assert out.filter(pl.col("id") == 4).get_column("late_rate").item() == expected


def test_source_columns_are_the_operands_not_the_features() -> None:
    fs = rolling_spec()
    assert source_columns(fs) == ["id", "ts", "value", "key"]


def test_joined_features_may_take_a_source_column_name() -> None:
    # `key` is both a source column (the lookup's operand) and the feature's name: the feature wins.
    fs = feature_set(
        {
            "key": {"lookup": {"dimension": "dim", "key": "key", "dimension_key": "code", "column": "altitude"}},
            "value": {"lag": {"value": "value", "by": "key", "days": 1, "agg": "sum"}},
        }
    )
    source = events([(1, "a", "2013-01-01 00:00", 5.0), (2, "a", "2013-01-02 00:00", 7.0)])
    dim = pl.DataFrame({"code": ["a"], "altitude": [100]})
    out = compile_features(fs, source, {"dim": dim}).collect()
    assert out.columns == ["id", "ts", "key", "value"]
    assert out.get_column("key").to_list() == [100, 100]
    # The lag groups by the looked-up `key` now (100 on both days): day 2 sees day 1's 5.0.
    assert out.get_column("value").to_list() == [None, 5.0]


def test_aware_timestamps_take_the_days_and_hours_of_the_partitions_zone() -> None:
    fs = feature_set(
        {
            "hour": {"date_part": {"column": "ts", "part": "hour"}},
            "yesterday": {"lag": {"value": "value", "by": ["key"], "days": 1, "agg": "sum"}},
        }
    )
    # 23:30 in New York on Jan 1 is 04:30 UTC on Jan 2: the same UTC day as the second row.
    source = events([(1, "a", "2013-01-02 04:30", 1.0), (2, "a", "2013-01-02 17:00", 2.0)]).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC")
    )
    local = compile_features(fs, source, timezone="America/New_York").collect()
    assert local.get_column("hour").to_list() == [23, 12]
    assert local.get_column("yesterday").to_list() == [None, 1.0]  # Jan 1 feeds Jan 2
    assert local.get_column("ts").dt.date().to_list() == [dt.date(2013, 1, 1), dt.date(2013, 1, 2)]
    utc = compile_features(fs, source).collect()  # no zone: the values' own (UTC), one day
    assert utc.get_column("hour").to_list() == [4, 17]
    assert utc.get_column("yesterday").to_list() == [None, None]
    naive = compile_features(fs, events([(1, "a", "2013-01-01 23:30", 1.0)]), timezone="America/New_York")
    assert naive.collect().get_column("hour").to_list() == [23]  # wall-clock time already


def test_a_composite_entity_keys_the_output_and_the_order() -> None:
    fs = FeatureSetSpec.model_validate(
        {**feature_set({"value": "value"}).model_dump(), "entity": ["key", "ts"], "features": {"value": "value"}}
    )
    assert fs.entity_columns() == ["key", "ts"] and source_columns(fs) == ["key", "ts", "value"]
    source = events(
        [(1, "b", "2013-01-07 05:00", 1.0), (2, "a", "2013-01-07 05:00", 2.0), (3, "a", "2013-01-06 09:00", 3.0)]
    )
    out = compile_features(fs, source).collect()
    assert out.columns == ["key", "ts", "value"]  # the timestamp once, as part of the key
    assert out.get_column("value").to_list() == [3.0, 2.0, 1.0]  # by time, then by the whole entity


def test_an_entity_naming_a_column_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="key named twice"):
        FeatureSetSpec.model_validate({**feature_set({"value": "value"}).model_dump(), "entity": ["key", "key"]})
