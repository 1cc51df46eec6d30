"""The fast path: supported expectations compiled to one polars aggregate pass per row condition.

It reproduces GX's pandas semantics (NaN is missing, `mostly`, which rows count for the percent,
the first 20 unexpected values in row order, a row condition filtering the rows before every
metric), proven by `tests/test_gate_parity.py`. It evaluates only what it supports exactly (types,
their arguments, column dtypes, row conditions, suite parameter forms); everything else, including
arguments GX would refuse, goes to GX, which gives its own verdict or error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from factory_dagster.gates.engines import gx_engine
from factory_dagster.gates.engines.conditions import Unsupported, is_number, row_filter
from factory_dagster.gates.engines.parameters import resolve
from factory_dagster.gates.outcome import ExpectationOutcome
from factory_dagster.gates.suites import Expectation

NAME = "polars"

_CONDITION = {"row_condition", "condition_parser"}
_BOUNDS = {"min_value", "max_value", "strict_min", "strict_max"}
_COLUMN_MAP = {"column", "mostly"} | _CONDITION
_COLUMN_AGGREGATE = {"column"} | _BOUNDS | _CONDITION
_STAT_TYPES = (
    "expect_column_mean_to_be_between",
    "expect_column_min_to_be_between",
    "expect_column_max_to_be_between",
    "expect_column_median_to_be_between",
    "expect_column_sum_to_be_between",
    "expect_column_stdev_to_be_between",
    "expect_column_unique_value_count_to_be_between",
    "expect_column_proportion_of_unique_values_to_be_between",
)
# The arguments the fast path understands, per type: any other argument (a typo GX refuses, an
# option it does not model) sends the expectation to GX.
ARGUMENTS: dict[str, set[str]] = {
    "expect_column_values_to_not_be_null": _COLUMN_MAP,
    "expect_column_values_to_be_null": _COLUMN_MAP,
    "expect_column_values_to_be_between": _COLUMN_MAP | _BOUNDS,
    "expect_column_values_to_be_in_set": _COLUMN_MAP | {"value_set"},
    "expect_column_values_to_not_be_in_set": _COLUMN_MAP | {"value_set"},
    "expect_column_values_to_be_unique": _COLUMN_MAP,
    "expect_compound_columns_to_be_unique": {"column_list", "ignore_row_if", "mostly"} | _CONDITION,
    **{name: _COLUMN_AGGREGATE for name in _STAT_TYPES},
    "expect_table_row_count_to_be_between": _BOUNDS | _CONDITION,
    "expect_table_row_count_to_equal": {"value"} | _CONDITION,
    "expect_table_column_count_to_be_between": _BOUNDS,
    "expect_table_column_count_to_equal": {"value"},
    "expect_table_columns_to_match_ordered_list": {"column_list"},
    "expect_table_columns_to_match_set": {"column_set", "exact_match"},
    "expect_column_to_exist": {"column", "column_index"},
}
_FLAGS = ("strict_min", "strict_max", "exact_match")


def _arguments(e: Expectation, parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The expectation's arguments with suite parameters evaluated, when the fast path models them
    all exactly as GX would accept them; otherwise Unsupported."""
    if e.type not in ARGUMENTS or not set(e.kwargs) <= ARGUMENTS[e.type]:
        raise Unsupported(e.type)
    kw = {k: resolve(v, parameters) for k, v in e.kwargs.items()}
    if any(k in kw and not isinstance(kw[k], bool) for k in _FLAGS):
        raise Unsupported("a flag that is not true or false")  # GX coerces "no", 1, …
    low, high = kw.get("min_value"), kw.get("max_value")
    if low is not None and high is not None:
        try:
            inverted = bool(low > high)
        except TypeError:
            inverted = True
        if inverted:
            raise Unsupported("min_value above max_value")  # GX errors or refuses: its message
    return kw


def _temporal_bound(bound: Any, dtype: pl.DataType) -> Any:
    """ISO timestamps in a suite become datetimes, as GX's argument parsing does; an aware bound
    is expressed in the column's time zone (the same instant, comparable by polars)."""
    if isinstance(bound, str) and isinstance(dtype, pl.Datetime):
        try:
            bound = dt.datetime.fromisoformat(bound)
        except ValueError:
            raise Unsupported("not an ISO timestamp") from None
    if (
        isinstance(bound, dt.datetime)
        and bound.tzinfo is not None
        and isinstance(dtype, pl.Datetime)
        and dtype.time_zone is not None
    ):
        return bound.astimezone(ZoneInfo(dtype.time_zone))
    return bound


def _kind(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_numeric():
        return "numeric"
    if dtype in (pl.String, pl.Categorical, pl.Enum):
        return "string"
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return "temporal"
    return "other"


def _column(frame: pl.DataFrame, name: Any) -> tuple[pl.Expr, pl.Expr, pl.DataType]:
    """(value with NaN as null, missing flag, dtype) — pandas counts NaN as missing."""
    if not isinstance(name, str) or name not in frame.columns:
        raise Unsupported("column absent or not a name")  # GX reports the error itself
    dtype = frame.schema[name]
    col = pl.col(name)
    if dtype in (pl.Float32, pl.Float64):
        return col.fill_nan(None), col.is_null() | col.is_nan(), dtype
    return col, col.is_null(), dtype


def _bound_ok(bound: Any, kind: str, dtype: pl.DataType) -> bool:
    if bound is None:
        return True
    if kind == "numeric":
        return is_number(bound)
    if kind == "temporal":
        if dtype == pl.Date:
            return type(bound) is dt.date
        if isinstance(bound, dt.datetime) and isinstance(dtype, pl.Datetime):
            return (bound.tzinfo is None) == (dtype.time_zone is None)
    return False


def _between(value: pl.Expr, low: Any, high: Any, strict_low: bool, strict_high: bool) -> pl.Expr:
    ok = pl.lit(True)
    if low is not None:
        ok = ok & (value > low if strict_low else value >= low)
    if high is not None:
        ok = ok & (value < high if strict_high else value <= high)
    return ok


def _in_range(observed: Any, low: Any, high: Any, strict_low: bool, strict_high: bool) -> bool:
    if observed is None:
        return False
    if low is not None and (observed <= low if strict_low else observed < low):
        return False
    return not (high is not None and (observed >= high if strict_high else observed > high))


@dataclass
class _MapCheck:
    """A column-map expectation: which rows count, and which of those are unexpected."""

    expectation: Expectation
    domain: pl.Expr | None  # None: every row counts
    unexpected: pl.Expr
    mostly: float
    example_columns: list[str]
    counts_missing: bool  # not_be_null / be_null: percent of all rows, no missing_count
    distinct: pl.Expr | None = None  # uniqueness: distinct values in the domain (cheap pre-check)


@dataclass
class _AggCheck:
    expectation: Expectation
    value: pl.Expr
    judge: Callable[[Any], bool]
    normalize: Callable[[Any], Any] = lambda v: v


def _mostly(kwargs: Mapping[str, Any]) -> float:
    mostly = kwargs.get("mostly", 1.0)
    if not is_number(mostly) or not 0 <= mostly <= 1:
        raise Unsupported("mostly out of range")
    return float(mostly)


def _compile_map(frame: pl.DataFrame, e: Expectation, kw: Mapping[str, Any]) -> _MapCheck:
    kind_of = e.type
    if kind_of == "expect_compound_columns_to_be_unique":
        columns = kw.get("column_list")
        if not isinstance(columns, list) or not columns:
            raise Unsupported("column_list")
        parts = [_column(frame, c) for c in columns]
        missing = [m for _, m, _ in parts]
        rule = kw.get("ignore_row_if", "all_values_are_missing")
        if rule == "all_values_are_missing":
            domain = ~pl.all_horizontal(missing)
        elif rule == "any_value_is_missing":
            domain = ~pl.any_horizontal(missing)
        elif rule == "never":
            domain = None
        else:
            raise Unsupported("ignore_row_if")
        rows = pl.struct([v.alias(c) for (v, _, _), c in zip(parts, columns, strict=True)])
        distinct = (rows if domain is None else rows.filter(domain)).n_unique()
        return _MapCheck(e, domain, rows.is_duplicated(), _mostly(kw), list(columns), False, distinct)

    value, missing, dtype = _column(frame, kw.get("column"))
    kind = _kind(dtype)
    mostly = _mostly(kw)
    column = kw["column"]
    if kind_of == "expect_column_values_to_not_be_null":
        return _MapCheck(e, None, missing, mostly, [column], True)
    if kind_of == "expect_column_values_to_be_null":
        return _MapCheck(e, None, ~missing, mostly, [column], True)
    if kind_of == "expect_column_values_to_be_between":
        low, high = (_temporal_bound(kw.get(k), dtype) for k in ("min_value", "max_value"))
        if kind not in ("numeric", "temporal") or not (_bound_ok(low, kind, dtype) and _bound_ok(high, kind, dtype)):
            raise Unsupported("bounds")
        if low is None and high is None:
            raise Unsupported("no bounds")
        if low is not None and high is not None and low > high:
            raise Unsupported("min_value above max_value")
        ok = _between(value, low, high, bool(kw.get("strict_min")), bool(kw.get("strict_max")))
        return _MapCheck(e, ~missing, ~ok, mostly, [column], False)
    if kind_of in ("expect_column_values_to_be_in_set", "expect_column_values_to_not_be_in_set"):
        values = kw.get("value_set")
        if not isinstance(values, list) or not values:
            raise Unsupported("value_set")
        if kind == "string" and all(isinstance(v, str) for v in values):
            members = pl.Series(values, dtype=pl.String)
            test = value.cast(pl.String).is_in(members)
        elif kind == "numeric" and all(is_number(v) for v in values):
            test = value.cast(pl.Float64).is_in(pl.Series([float(v) for v in values], dtype=pl.Float64))
        elif kind == "bool" and all(isinstance(v, bool) for v in values):
            test = value.is_in(pl.Series(values, dtype=pl.Boolean))
        else:
            raise Unsupported("value_set types")
        inside = kind_of == "expect_column_values_to_be_in_set"
        return _MapCheck(e, ~missing, ~test if inside else test, mostly, [column], False)
    if kind_of == "expect_column_values_to_be_unique":
        if kind not in ("numeric", "string", "bool", "temporal"):
            raise Unsupported("dtype")
        return _MapCheck(e, ~missing, value.is_duplicated(), mostly, [column], False, value.filter(~missing).n_unique())
    raise Unsupported(kind_of)


_STATS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "expect_column_mean_to_be_between": lambda v: v.mean(),
    "expect_column_min_to_be_between": lambda v: v.min(),
    "expect_column_max_to_be_between": lambda v: v.max(),
    "expect_column_median_to_be_between": lambda v: v.median(),
    "expect_column_sum_to_be_between": lambda v: v.sum(),
    "expect_column_stdev_to_be_between": lambda v: v.std(ddof=1),
}


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


def _compile_agg(frame: pl.DataFrame, e: Expectation, kw: Mapping[str, Any]) -> _AggCheck:
    low, high = kw.get("min_value"), kw.get("max_value")
    strict = bool(kw.get("strict_min")), bool(kw.get("strict_max"))
    if not all(is_number(b) or b is None for b in (low, high)) or (low is None and high is None):
        raise Unsupported("bounds")

    def judge(observed: Any) -> bool:
        return _in_range(observed, low, high, *strict)

    value, missing, dtype = _column(frame, kw.get("column"))
    if e.type in _STATS:
        if _kind(dtype) != "numeric":
            raise Unsupported("dtype")
        return _AggCheck(e, _STATS[e.type](value), judge, _finite_or_none)
    if e.type == "expect_column_unique_value_count_to_be_between":
        return _AggCheck(e, value.drop_nulls().n_unique(), judge)
    if e.type == "expect_column_proportion_of_unique_values_to_be_between":
        present = (~missing).sum()
        ratio = pl.when(present > 0).then(value.drop_nulls().n_unique() / present).otherwise(0)
        return _AggCheck(e, ratio, judge)
    raise Unsupported(e.type)


def _table(frame: pl.DataFrame, e: Expectation, kw: Mapping[str, Any]) -> ExpectationOutcome:
    columns = frame.columns
    if e.type in ("expect_table_row_count_to_be_between", "expect_table_column_count_to_be_between"):
        observed = frame.height if "row" in e.type else frame.width
        low, high = kw.get("min_value"), kw.get("max_value")
        if not all((isinstance(b, int) and not isinstance(b, bool)) or b is None for b in (low, high)):
            raise Unsupported("bounds")
        success = _in_range(observed, low, high, bool(kw.get("strict_min")), bool(kw.get("strict_max")))
    elif e.type in ("expect_table_row_count_to_equal", "expect_table_column_count_to_equal"):
        value = kw.get("value")
        if not isinstance(value, int) or isinstance(value, bool):
            raise Unsupported("value")
        observed = frame.height if "row" in e.type else frame.width
        success = observed == value
    elif e.type == "expect_table_columns_to_match_ordered_list":
        expected = kw.get("column_list")
        if expected is not None and not isinstance(expected, list):
            raise Unsupported("column_list")
        # GX: no list to match is vacuously true
        observed, success = list(columns), expected is None or list(columns) == expected
    elif e.type == "expect_table_columns_to_match_set":
        expected = kw.get("column_set")
        if not isinstance(expected, list):
            raise Unsupported("column_set")
        observed = sorted(columns)
        exact = kw.get("exact_match", True)
        success = set(columns) == set(expected) if exact else set(expected) <= set(columns)
    elif e.type == "expect_column_to_exist":
        index = kw.get("column_index")
        if not isinstance(kw.get("column"), str) or not (index is None or type(index) is int):
            raise Unsupported("column or column_index")
        success = kw["column"] in columns and (index is None or columns.index(kw["column"]) == index)
        observed = None
    else:
        raise Unsupported(e.type)
    return ExpectationOutcome(e, success, NAME, observed=observed)


def _unexpected_rows(check: _MapCheck) -> pl.Expr:
    return check.unexpected if check.domain is None else check.domain & check.unexpected


def _map_outcome(frame: pl.DataFrame, check: _MapCheck, counts: dict[str, int]) -> ExpectationOutcome:
    index = check.expectation.index
    total, domain, unexpected = frame.height, counts[f"d{index}"], counts[f"u{index}"]
    base = total if check.counts_missing else domain
    examples: list[Any] = []
    if unexpected:
        rows = frame.filter(_unexpected_rows(check)).head(gx_engine.PARTIAL_UNEXPECTED)
        if len(check.example_columns) == 1:
            examples = rows.get_column(check.example_columns[0]).to_list()
        else:
            examples = rows.select(check.example_columns).to_dicts()
    success = base == 0 or (float(base) - float(unexpected)) / float(base) >= check.mostly
    return ExpectationOutcome(
        check.expectation,
        success,
        NAME,
        element_count=total,
        missing_count=None if check.counts_missing else total - domain,
        unexpected_count=unexpected,
        unexpected_percent=(unexpected / base * 100) if base else None,
        examples=examples,
    )


def _needed_columns(frame: pl.DataFrame, expectations: Sequence[Expectation]) -> pl.DataFrame:
    """Only the columns GX will read: converting a wide frame to pandas is most of GX's cost.
    A column named anywhere in an expectation's arguments (a row condition, say) is kept."""
    if any(e.type.startswith("expect_table_") or not e.columns for e in expectations):
        return frame
    text = " ".join(repr(e.kwargs) for e in expectations)
    wanted = {c for e in expectations for c in e.columns} | {c for c in frame.columns if c in text}
    return frame.select([c for c in frame.columns if c in wanted])


def _one_pass(
    frame: pl.DataFrame, items: Sequence[tuple[Expectation, dict[str, Any]]]
) -> tuple[dict[int, ExpectationOutcome], list[Expectation]]:
    """Outcomes of the supported expectations over `frame` in one aggregate pass; the rest."""
    outcomes: dict[int, ExpectationOutcome] = {}
    maps: list[_MapCheck] = []
    aggs: list[_AggCheck] = []
    fallback: list[Expectation] = []
    for e, kw in items:
        try:
            if e.type.startswith("expect_table_") or e.type == "expect_column_to_exist":
                outcomes[e.index] = _table(frame, e, kw)
            elif e.type in _STAT_TYPES:
                aggs.append(_compile_agg(frame, e, kw))
            else:
                maps.append(_compile_map(frame, e, kw))
        except Unsupported:
            fallback.append(e)

    exprs: list[pl.Expr] = []
    for check in maps:
        index = check.expectation.index
        domain = pl.len() if check.domain is None else check.domain.sum()
        exprs.append(domain.alias(f"d{index}"))
        # Uniqueness: counting distinct values is several times cheaper than flagging duplicated
        # rows, and when every value is distinct there is nothing to flag.
        exprs.append(
            (check.distinct if check.distinct is not None else _unexpected_rows(check).sum()).alias(
                f"{'n' if check.distinct is not None else 'u'}{index}"
            )
        )
    exprs += [check.value.alias(f"a{check.expectation.index}") for check in aggs]
    values = frame.select(exprs).row(0, named=True) if exprs else {}
    duplicated = [
        c
        for c in maps
        if c.distinct is not None and values[f"n{c.expectation.index}"] < values[f"d{c.expectation.index}"]
    ]
    if duplicated:
        values.update(
            frame.select(_unexpected_rows(c).sum().alias(f"u{c.expectation.index}") for c in duplicated).row(
                0, named=True
            )
        )
    for check in maps:
        values.setdefault(f"u{check.expectation.index}", 0)
    for check in maps:
        outcomes[check.expectation.index] = _map_outcome(frame, check, values)
    for check in aggs:
        observed = check.normalize(values[f"a{check.expectation.index}"])
        outcomes[check.expectation.index] = ExpectationOutcome(
            check.expectation, check.judge(observed), NAME, observed=observed
        )
    return outcomes, fallback


def validate(
    frame: pl.DataFrame, expectations: Sequence[Expectation], parameters: Mapping[str, Any] | None = None
) -> list[ExpectationOutcome]:
    """Outcomes in the order of `expectations`: supported ones in one pass per row condition (GX
    filters the rows first, then computes every metric over them), the rest through GX."""
    parameters = parameters or {}
    groups: dict[tuple[Any, Any], tuple[pl.Expr | None, list[tuple[Expectation, dict[str, Any]]]]] = {}
    fallback: list[Expectation] = []
    for e in expectations:
        try:
            kw = _arguments(e, parameters)
            rows = row_filter(frame, kw)
        except Unsupported:
            fallback.append(e)
            continue
        key = (kw.get("row_condition"), kw.get("condition_parser"))
        groups.setdefault(key, (rows, []))[1].append((e, kw))
    outcomes: dict[int, ExpectationOutcome] = {}
    for rows, items in groups.values():
        done, left = _one_pass(frame if rows is None else frame.filter(rows), items)
        outcomes.update(done)
        fallback += left
    fallback.sort(key=lambda e: e.index)
    for outcome in gx_engine.validate(_needed_columns(frame, fallback), fallback, parameters):
        outcomes[outcome.expectation.index] = outcome
    return [outcomes[e.index] for e in expectations]
