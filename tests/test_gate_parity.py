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


def assert_never_passes_what_gx_fails(
    frame: pl.DataFrame, suite: list[Expectation], parameters: dict[str, Any], where: str
) -> list[str]:
    """GX is the oracle: every verdict, observation and error of the fast engine equals GX's.
    Returns the engine of each expectation."""
    reference = gx_engine.validate(frame, suite, parameters)
    fast = polars_engine.validate(frame, suite, parameters)
    for ref, got in zip(reference, fast, strict=True):
        here = f"{where}, {ref.expectation.type} {ref.expectation.kwargs}"
        assert not (got.success and not got.failed and ref.failed), f"fail-open: {here}"
        assert got.error == ref.error, f"{here}: error gx={ref.error!r} polars={got.error!r}"
        if ref.error is None:
            for name in FIELDS:
                assert same(getattr(ref, name), getattr(got, name)), (
                    f"{here}: {name} gx={getattr(ref, name)!r} polars={getattr(got, name)!r}"
                )
    return [o.engine for o in fast]


# The issue's frame: GX filters to the two "a" rows; evaluating the whole frame passed them.
SEG_V = pl.DataFrame({"seg": ["a", "a"] + ["b"] * 8, "v": [100.0, 100.0] + [1.0] * 8})


@pytest.mark.parametrize(
    "condition",
    [
        {"row_condition": 'seg == "a"', "condition_parser": "pandas"},
        {"row_condition": 'col("seg") == "a"', "condition_parser": "great_expectations"},
    ],
    ids=["pandas", "great_expectations"],
)
def test_issue_values_between_under_a_row_condition_fails_as_in_gx(condition: dict[str, str]) -> None:
    kwargs = {"column": "v", "min_value": 0, "max_value": 10, "mostly": 0.7, **condition}
    suite = [Expectation(0, "expect_column_values_to_be_between", kwargs)]
    assert assert_never_passes_what_gx_fails(SEG_V, suite, {}, "issue example") == ["polars"]
    (outcome,) = polars_engine.validate(SEG_V, suite, {})
    (reference,) = gx_engine.validate(SEG_V, suite, {})
    assert not reference.success and (reference.unexpected_count, reference.element_count) == (2, 2)
    assert not outcome.success and (outcome.unexpected_count, outcome.element_count) == (2, 2)


def test_issue_mean_under_a_row_condition_is_the_filtered_mean() -> None:
    kwargs = {
        "column": "v",
        "min_value": 0,
        "max_value": 10,
        "row_condition": 'seg == "a"',
        "condition_parser": "pandas",
    }
    suite = [Expectation(0, "expect_column_mean_to_be_between", kwargs)]
    assert assert_never_passes_what_gx_fails(SEG_V, suite, {}, "issue example") == ["polars"]
    (outcome,) = polars_engine.validate(SEG_V, suite, {})
    assert not outcome.success and outcome.observed == SEG_V.filter(pl.col("seg") == "a")["v"].mean() == 100.0


def test_issue_not_null_with_mostly_under_a_row_condition() -> None:
    frame = SEG_V.with_columns(v=pl.Series([None, None] + [1.0] * 8))
    kwargs = {"column": "v", "mostly": 0.5, "row_condition": 'seg == "a"', "condition_parser": "pandas"}
    suite = [Expectation(0, "expect_column_values_to_not_be_null", kwargs)]
    assert assert_never_passes_what_gx_fails(frame, suite, {}, "issue example") == ["polars"]
    (outcome,) = polars_engine.validate(frame, suite, {})
    assert not outcome.success and (outcome.unexpected_count, outcome.unexpected_percent) == (2, 100.0)


def test_a_delegated_expectation_gets_the_columns_its_row_condition_names() -> None:
    kwargs = {"column": "v", "regex": "^9", "row_condition": 'seg == "a"', "condition_parser": "pandas"}
    suite = [Expectation(0, "expect_column_values_to_match_regex", kwargs)]
    (outcome,) = polars_engine.validate(SEG_V.with_columns(v=pl.col("v").cast(pl.String)), suite, {})
    assert outcome.engine == "gx" and outcome.error is None and not outcome.success
    assert (outcome.element_count, outcome.unexpected_count) == (2, 2)  # the two "a" rows, not all ten


def test_column_list_null_passes_as_in_gx() -> None:
    suite = [Expectation(0, "expect_table_columns_to_match_ordered_list", {"column_list": None})]
    assert assert_never_passes_what_gx_fails(SEG_V, suite, {}, "column_list null") == ["polars"]
    (outcome,) = polars_engine.validate(SEG_V, suite, {})
    assert outcome.success and outcome.observed == ["seg", "v"]


def test_min_above_max_gives_gxs_error() -> None:
    suite = [
        Expectation(0, "expect_column_values_to_be_between", {"column": "v", "min_value": 10, "max_value": 0}),
        Expectation(1, "expect_table_row_count_to_be_between", {"min_value": 10, "max_value": 0}),
    ]
    assert_never_passes_what_gx_fails(SEG_V, suite, {}, "min above max")
    between, rows = polars_engine.validate(SEG_V, suite, {})
    assert between.error == "min_value cannot be greater than max_value"
    assert rows.error is not None and "must be less than or equal to max_value" in rows.error


# Row conditions: columns of every supported kind, literals of their own and other kinds, and/or/not,
# in-lists, conditions that keep no row, and forms only GX can read (or refuses).
def random_condition(rng: np.random.Generator) -> dict[str, str]:
    def compare() -> str:
        column = str(rng.choice(["i", "f", "s", "id", "i32", "f32"]))
        op = str(rng.choice(["==", "!=", "<", "<=", ">", ">="]))
        if column == "s":
            return f"{column} {op} {rng.choice(['EWR', 'JFK', 'XXX', ''])!r}"
        return f"{column} {op} {rng.choice([0, 1, 2.25, -1.5, 100, 3])}"

    def pandas() -> str:
        roll = rng.random()
        if roll < 0.35:
            return compare()
        if roll < 0.5:
            return f"({compare()}) {rng.choice(['&', '|', 'and', 'or'])} ({compare()})"
        if roll < 0.6:
            return f"{rng.choice(['not', '~'])} ({compare()})"
        if roll < 0.7:
            return f"s {rng.choice(['in', 'not in'])} ['EWR', 'LGA']"
        if roll < 0.75:
            return f"i {rng.choice(['in', 'not in'])} [0, 1, 2]"
        if roll < 0.8:
            return "i > 1000"  # keeps no row
        return str(
            rng.choice(
                [
                    "b == True",
                    "t > '2013-01-02'",
                    "s.str.len() > 2",
                    "nope > 1",
                    "s == 1",
                    "i == 1 & f > 0",
                    "`i` > 0",
                    "",
                ]
            )
        )

    if rng.random() < 0.3:
        column = str(rng.choice(["i", "f", "s", "b"]))
        text = str(
            rng.choice(
                [
                    f'col("{column}").notnull()',
                    f'col("{column}") {rng.choice(["==", "!=", ">", "<="])} {rng.choice([1, 2.25, -1])}',
                    f'col("s") {rng.choice(["==", "!="])} "JFK"',
                    'col("nope") > 1',
                    "s == 'JFK'",
                    'col("i") > 1 and col("f") < 2',
                ]
            )
        )
        return {"row_condition": text, "condition_parser": "great_expectations"}
    return {"row_condition": pandas(), "condition_parser": "pandas"}


def typed_frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    frame = random_frame(rng, n)
    return frame.with_columns(i32=pl.col("i").cast(pl.Int32), f32=pl.col("f").cast(pl.Float32), d=pl.col("t").dt.date())


SWEEP_SEEDS = 40
QUICK_SEEDS = 6  # in the quick run (`-m "not e2e"`); the whole sweep runs with the end-to-end tests


@pytest.mark.parametrize(
    "seed", [pytest.param(seed, marks=[pytest.mark.e2e] if seed >= QUICK_SEEDS else []) for seed in range(SWEEP_SEEDS)]
)
def test_row_conditions_match_gx(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    frame = typed_frame(rng, SIZES[seed % len(SIZES)])
    suite = [
        Expectation(e.index, e.type, {**e.kwargs, **random_condition(rng)}) if rng.random() < 0.7 else e
        for e in random_suite(rng)
    ]
    parameters = {"start": dt.datetime(2013, 1, 1, tzinfo=UTC), "end": dt.datetime(2013, 1, 3, tzinfo=UTC), "days": 2}
    engines = assert_never_passes_what_gx_fails(frame, suite, parameters, f"seed {seed}, rows {frame.height}")
    assert "polars" in engines


# Suite parameters in GX's grammar: now(), datetime(...), timedelta(...), arithmetic, and forms
# GX refuses (a lone literal, a missing name, a timedelta it cannot serialize).
PARAMETER_FORMS = [
    "start",
    "start + timedelta(hours=6)",
    "end - timedelta(days=days)",
    "datetime(2013, 1, 1, 12)",
    "now() - timedelta(days=5000)",
    "now() + timedelta(days=1)",
    "timedelta(days=1)",
    "-5",
    "nope + 1",
    "days * 2 - 5",
    "(days + 1) / 2",
    "days - 1.5",
    "start - 1",
]


@pytest.mark.parametrize("form", PARAMETER_FORMS)
@pytest.mark.parametrize("column", ["t", "tn", "i"])
@pytest.mark.parametrize("count", ["days", "n"], ids=["days", "no-days"])
def test_suite_parameters_match_gx(form: str, column: str, count: str) -> None:
    """GX also substitutes a parameter named `days` for timedelta's keyword: both sets are tried."""
    rng = np.random.default_rng(7)
    frame = random_frame(rng, 40).with_columns(tn=pl.col("t").dt.replace_time_zone(None))
    parameters = {"start": dt.datetime(2013, 1, 1, 3), "end": dt.datetime(2013, 1, 2, 7), count: 2}
    suite = [
        Expectation(0, "expect_column_values_to_be_between", {"column": column, "min_value": {"$PARAMETER": form}}),
        Expectation(1, "expect_column_max_to_be_between", {"column": column, "max_value": {"$PARAMETER": form}}),
        Expectation(2, "expect_table_row_count_to_be_between", {"min_value": {"$PARAMETER": form}}),
    ]
    assert_never_passes_what_gx_fails(frame, suite, parameters, f"{form} on {column}")


def test_now_and_timedelta_are_not_missing_parameters() -> None:
    frame = pl.DataFrame({"tn": [dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1)]})
    kwargs = {"column": "tn", "min_value": {"$PARAMETER": "now() - timedelta(days=1)"}}
    suite = [Expectation(0, "expect_column_values_to_be_between", kwargs)]
    engines = assert_never_passes_what_gx_fails(frame, suite, {}, "now()")
    assert engines == ["polars"]
    (outcome,) = polars_engine.validate(frame, suite, {})
    assert outcome.error is None and outcome.unexpected_count == 1 and outcome.examples[0] == dt.datetime(2000, 1, 1)


# Arguments GX refuses or reads in its own way: the fast engine gives GX's verdict or error.
INVALID_ARGUMENTS: list[tuple[str, dict[str, Any]]] = [
    ("expect_column_values_to_be_between", {"column": "f", "min_value": 3, "max_value": 1}),
    (
        "expect_column_values_to_be_between",
        {"column": "t", "min_value": "2013-01-02T00:00:00Z", "max_value": "2013-01-01T00:00:00Z"},
    ),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": {"$PARAMETER": "days"}, "max_value": 0}),
    ("expect_column_values_to_be_between", {"column": "f"}),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": 0, "strict_min": "no"}),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": 0, "mostly": "0.5"}),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": 0, "mostly": 1.5}),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": 0, "min_valeu": 1}),
    ("expect_column_values_to_be_between", {"column": "f", "min_value": "0", "max_value": 10}),
    ("expect_column_mean_to_be_between", {"column": "f", "min_value": 3, "max_value": 1}),
    ("expect_column_median_to_be_between", {"column": "i", "min_value": 3, "max_value": 1}),
    ("expect_column_unique_value_count_to_be_between", {"column": "s", "min_value": 5, "max_value": 1}),
    ("expect_table_row_count_to_be_between", {"min_value": 10, "max_value": 0}),
    ("expect_table_row_count_to_be_between", {"min_value": 1.5}),
    ("expect_table_row_count_to_equal", {"value": "40"}),
    ("expect_table_column_count_to_be_between", {"min_value": 10, "max_value": 0}),
    ("expect_column_values_to_be_in_set", {"column": "s", "value_set": []}),
    ("expect_column_values_to_be_in_set", {"column": "s", "value_set": "EWR"}),
    ("expect_column_values_to_not_be_null", {"column": "f", "mostly": -0.1}),
    ("expect_compound_columns_to_be_unique", {"column_list": ["s", "i"], "ignore_row_if": "sometimes"}),
    ("expect_table_columns_to_match_ordered_list", {"column_list": None}),
    (
        "expect_table_columns_to_match_ordered_list",
        {"column_list": ["i"], "row_condition": "i > 0", "condition_parser": "pandas"},
    ),
    ("expect_table_columns_to_match_set", {"column_set": None}),
    ("expect_table_columns_to_match_set", {"column_set": ["i"], "exact_match": "no"}),
    ("expect_column_to_exist", {"column": "s", "column_index": "2"}),
    ("expect_column_values_to_not_be_null", {"column": "f", "row_condition": "", "condition_parser": "pandas"}),
    ("expect_column_values_to_not_be_null", {"column": "f", "row_condition": "i > 0", "condition_parser": "sql"}),
    ("expect_column_values_to_not_be_null", {"column": "f", "row_condition": "i > 0"}),
    ("expect_column_values_to_not_be_null", {"column": "f", "condition_parser": "pandas"}),
]


@pytest.mark.parametrize("rows", [0, 40])
def test_invalid_arguments_match_gx(rows: int) -> None:
    frame = random_frame(np.random.default_rng(3), rows)
    suite = [Expectation(i, type_, kwargs) for i, (type_, kwargs) in enumerate(INVALID_ARGUMENTS)]
    assert_never_passes_what_gx_fails(frame, suite, {"days": 2}, f"{rows} rows")
