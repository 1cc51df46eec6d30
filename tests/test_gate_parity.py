"""The polars fast path gives GX's verdicts and observed values, over many generated frames.

Frames include nulls, NaN, ±inf, empty frames, duplicates and boundary values; suites mix every
supported expectation type with random arguments, plus types the fast path leaves to GX.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest

from factory_dagster.gates.engines import gx_engine, polars_engine
from factory_dagster.gates.suites import Expectation

SIZES = [0, 1, 2, 3, 7, 40, 150]
UTC = dt.UTC


def random_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    def nulls(values: list[Any], rate: float) -> list[Any]:
        return [None if rng.random() < rate else v for v in values]

    ints = nulls([int(v) for v in rng.integers(-3, 6, n)], rng.choice([0.0, 0.2, 0.6]))
    floats = [float(v) for v in rng.choice([-1.5, 0.0, 0.5, 1.0, 2.25, 3.0, 10.0], n)]
    for i in range(n):
        roll = rng.random()
        floats[i] = float("nan") if roll < 0.1 else None if roll < 0.2 else float("inf") if roll < 0.23 else floats[i]
    strings = nulls([str(v) for v in rng.choice(["EWR", "JFK", "LGA", "XXX", ""], n)], 0.15)
    bools = nulls([bool(v) for v in rng.integers(0, 2, n)], 0.1)
    base = dt.datetime(2013, 1, 1, tzinfo=UTC)
    stamps = nulls([base + dt.timedelta(hours=int(h)) for h in rng.integers(-30, 60, n)], 0.1)
    ids = [int(v) for v in rng.integers(0, max(n, 1) * 2, n)]
    return pl.DataFrame(
        {"i": ints, "f": floats, "s": strings, "b": bools, "t": stamps, "id": ids},
        schema={
            "i": pl.Int64,
            "f": pl.Float64,
            "s": pl.String,
            "b": pl.Boolean,
            "t": pl.Datetime("us", "UTC"),
            "id": pl.Int64,
        },
    )


def random_suite(rng: np.random.Generator) -> list[Expectation]:
    def mostly() -> dict[str, float]:
        return {} if rng.random() < 0.5 else {"mostly": float(rng.choice([0.5, 0.75, 0.9, 0.99]))}

    def bounds(low: float, high: float) -> dict[str, Any]:
        kw: dict[str, Any] = {}
        if rng.random() < 0.8:
            kw["min_value"] = float(rng.choice([low, 0.0, 0.5, 1.0]))
        if rng.random() < 0.8 or not kw:
            kw["max_value"] = float(rng.choice([high, 2.25, 3.0]))
        if rng.random() < 0.3:
            kw["strict_min"] = True
        if rng.random() < 0.3:
            kw["strict_max"] = True
        return kw

    num = str(rng.choice(["i", "f"]))
    specs: list[tuple[str, dict[str, Any]]] = [
        ("expect_column_values_to_not_be_null", {"column": str(rng.choice(["i", "f", "s", "b", "t"])), **mostly()}),
        ("expect_column_values_to_be_null", {"column": str(rng.choice(["i", "s"]))}),
        ("expect_column_values_to_be_between", {"column": num, **bounds(-1.5, 3.0), **mostly()}),
        (
            "expect_column_values_to_be_between",
            {"column": "t", "min_value": {"$PARAMETER": "start"}, "max_value": {"$PARAMETER": "end"}, **mostly()},
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "t", "min_value": "2013-01-01T06:00:00Z", "max_value": "2013-01-02T00:00:00+00:00"},
        ),
        (
            "expect_column_values_to_be_between",
            {"column": "i", "min_value": {"$PARAMETER": "days * 2 - 5"}, "max_value": {"$PARAMETER": "days + 1.5"}},
        ),
        ("expect_table_row_count_to_be_between", {"max_value": {"$PARAMETER": "days * 20"}}),
        ("expect_column_values_to_be_in_set", {"column": "s", "value_set": ["EWR", "JFK", "LGA"], **mostly()}),
        ("expect_column_values_to_be_in_set", {"column": "i", "value_set": [0, 1, 2, 3]}),
        ("expect_column_values_to_not_be_in_set", {"column": "s", "value_set": ["XXX", ""]}),
        ("expect_column_values_to_be_in_set", {"column": "b", "value_set": [True]}),
        ("expect_column_values_to_be_unique", {"column": str(rng.choice(["id", "s", "f"]))}),
        (
            "expect_compound_columns_to_be_unique",
            {
                "column_list": ["s", "i"],
                "ignore_row_if": str(rng.choice(["all_values_are_missing", "any_value_is_missing", "never"])),
            },
        ),
        ("expect_column_mean_to_be_between", {"column": num, **bounds(-1.0, 2.0)}),
        ("expect_column_min_to_be_between", {"column": num, **bounds(-2.0, 1.0)}),
        ("expect_column_max_to_be_between", {"column": num, **bounds(0.0, 5.0)}),
        ("expect_column_median_to_be_between", {"column": num, **bounds(0.0, 2.0)}),
        ("expect_column_sum_to_be_between", {"column": "i", "min_value": -5.0, "max_value": 50.0}),
        ("expect_column_stdev_to_be_between", {"column": num, "min_value": 0.1, "max_value": 3.0}),
        ("expect_column_unique_value_count_to_be_between", {"column": "s", "min_value": 1, "max_value": 4}),
        (
            "expect_column_proportion_of_unique_values_to_be_between",
            {"column": "s", "min_value": 0.2, "max_value": 1.0},
        ),
        ("expect_table_row_count_to_be_between", {"min_value": int(rng.integers(0, 5)), "max_value": 100}),
        ("expect_table_columns_to_match_ordered_list", {"column_list": ["i", "f", "s", "b", "t", "id"]}),
        ("expect_table_columns_to_match_set", {"column_set": ["i", "f", "s"], "exact_match": bool(rng.integers(0, 2))}),
        ("expect_column_to_exist", {"column": str(rng.choice(["s", "missing"]))}),
        # Left to GX by the fast path: regexes, string bounds, a column that does not exist.
        ("expect_column_values_to_match_regex", {"column": "s", "regex": "^[A-Z]{3}$"}),
        ("expect_column_values_to_be_between", {"column": "s", "min_value": "A", "max_value": "M"}),
        ("expect_column_values_to_not_be_null", {"column": "no_such_column"}),
    ]
    return [Expectation(i, type_, kwargs, "critical") for i, (type_, kwargs) in enumerate(specs)]


def normal(value: Any) -> Any:
    """Compare values the way a reader would: NaN is missing, 1 == 1.0, timestamps by instant."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) in ("NaT", "<NA>"):
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def same(a: Any, b: Any) -> bool:
    a, b = normal(a), normal(b)
    if (isinstance(a, float) and isinstance(b, (int, float))) or (isinstance(b, float) and isinstance(a, (int, float))):
        return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


FIELDS = ("success", "observed", "element_count", "missing_count", "unexpected_count", "unexpected_percent", "examples")


@pytest.mark.parametrize("seed", range(60))
def test_polars_engine_matches_gx(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = random_frame(rng, SIZES[seed % len(SIZES)])
    suite = random_suite(rng)
    new_york = ZoneInfo("America/New_York")
    parameters = {
        "start": dt.datetime(2013, 1, 1, tzinfo=UTC),
        "end": dt.datetime(2013, 1, 2, 7, tzinfo=new_york),
        "days": int(rng.integers(1, 4)),
    }
    reference = gx_engine.validate(frame, suite, parameters)
    fast = polars_engine.validate(frame, suite, parameters)
    engines = {o.expectation.index: o.engine for o in fast}
    left_to_gx = 3  # the regex, the string bounds and the missing column at the end of the suite
    assert sum(1 for e in engines.values() if e == "polars") == len(suite) - left_to_gx
    for ref, got in zip(reference, fast, strict=True):
        where = f"seed {seed}, rows {frame.height}, {ref.expectation.type} {ref.expectation.kwargs}"
        assert (ref.error is None) == (got.error is None), where
        if ref.error is not None:
            assert not got.success and not ref.success, where
            continue
        for name in FIELDS:
            assert same(getattr(ref, name), getattr(got, name)), (
                f"{where}: {name} gx={getattr(ref, name)!r} polars={getattr(got, name)!r}"
            )


def test_errored_expectations_fail_in_both_engines() -> None:
    frame = pl.DataFrame({"a": [1, 2]})
    suite = [Expectation(0, "expect_column_values_to_not_be_null", {"column": "nope"})]
    for engine in (gx_engine, polars_engine):
        (outcome,) = engine.validate(frame, suite, {})
        assert outcome.failed and outcome.error and "nope" in outcome.error
