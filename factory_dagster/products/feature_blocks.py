"""Compile a feature set spec to a polars lazy query.

Row-wise blocks become expressions; `lookup` becomes a left join to a dimension; `rolling` and
`lag` aggregate per key and day, then join back on strictly earlier days, so no feature ever
sees its own day or the future.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import polars as pl

from factory_dagster.spec.features import Compare, FeatureSpec, Lag, Rolling
from factory_dagster.spec.models import FeatureSetSpec

DAY = "__factory_day"
JOINED = "__factory_joined"  # a rolling, lag or lookup result before it takes its name
_CAST_TYPES = {"int": pl.Int64, "float": pl.Float64, "string": pl.String, "bool": pl.Boolean}
_DATE_PARTS = {
    "year": lambda e: e.dt.year(),
    "month": lambda e: e.dt.month(),
    "day": lambda e: e.dt.day(),
    "weekday": lambda e: e.dt.weekday(),  # 1 = Monday … 7 = Sunday
    "hour": lambda e: e.dt.hour(),
    "minute": lambda e: e.dt.minute(),
    "day_of_year": lambda e: e.dt.ordinal_day(),
    "week": lambda e: e.dt.week(),
}
_COMPARE = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


class FeatureComputationError(Exception):
    """Data violates an assumption of a feature (e.g. a dimension key is not unique)."""


def compare(column: str, op: str, value: object) -> pl.Expr:
    """`column <op> value` (gt, ge, lt, le, eq, ne); null where the column is null."""
    return _COMPARE[op](pl.col(column), pl.lit(value))


def compare_expression(block: Compare) -> pl.Expr:
    return compare(block.column, block.op, block.value)


def _row_expression(feature: FeatureSpec) -> pl.Expr:
    kind, block = feature.kind, feature.block
    if kind == "column":
        return pl.col(block)
    if kind == "cast":
        return pl.col(block.column).cast(_CAST_TYPES[block.to], strict=False)
    if kind == "date_part":
        return _DATE_PARTS[block.part](pl.col(block.column)).cast(pl.Int32)
    if kind == "bucket":
        labels = block.labels or [str(i) for i in range(len(block.boundaries) + 1)]
        bucketed = pl.col(block.column).cut(block.boundaries, labels=labels).cast(pl.String)
        return bucketed if block.labels else bucketed.cast(pl.Int32)
    if kind == "ratio":
        denominator = pl.col(block.denominator).cast(pl.Float64)
        return pl.when(denominator != 0).then(pl.col(block.numerator).cast(pl.Float64) / denominator)
    if kind == "difference":
        return pl.col(block.left) - pl.col(block.right)
    if kind == "compare":
        return compare_expression(block)
    raise ValueError(f"{kind} is not a row-wise block")


def _daily_aggregate(frame: pl.LazyFrame, block: Rolling | Lag) -> pl.LazyFrame:
    value = pl.col(block.value).cast(pl.Float64)
    return frame.group_by([*block.by, DAY]).agg(
        value.sum().alias("__sum"),
        value.count().alias("__count"),
        value.min().alias("__min"),
        value.max().alias("__max"),
    )


def _combine(agg: str, sums: pl.Expr, counts: pl.Expr, mins: pl.Expr, maxs: pl.Expr) -> pl.Expr:
    if agg == "mean":
        return pl.when(counts > 0).then(sums / counts)
    if agg == "sum":
        return sums
    if agg == "count":
        return counts
    return mins if agg == "min" else maxs


def _rolling(frame: pl.LazyFrame, name: str, block: Rolling) -> pl.LazyFrame:
    daily = _daily_aggregate(frame, block).sort(DAY)
    # closed="left": the window for day d is [d - window_days, d), i.e. strictly earlier days.
    windowed = daily.rolling(
        index_column=DAY, period=f"{block.window_days}d", closed="left", group_by=block.by
    ).agg(
        pl.col("__sum").sum().alias("s"),
        pl.col("__count").sum().alias("c"),
        pl.col("__min").min().alias("lo"),
        pl.col("__max").max().alias("hi"),
    )
    feature = _combine(block.agg, pl.col("s"), pl.col("c"), pl.col("lo"), pl.col("hi")).alias(name)
    return frame.join(windowed.select([*block.by, DAY, feature]), on=[*block.by, DAY], how="left",
                      nulls_equal=True)


def _lag(frame: pl.LazyFrame, name: str, block: Lag) -> pl.LazyFrame:
    daily = _daily_aggregate(frame, block)
    shifted = daily.with_columns((pl.col(DAY) + dt.timedelta(days=block.days)).alias(DAY))
    feature = _combine(block.agg, pl.col("__sum"), pl.col("__count"), pl.col("__min"), pl.col("__max"))
    return frame.join(shifted.select([*block.by, DAY, feature.alias(name)]), on=[*block.by, DAY],
                      how="left", nulls_equal=True)


def _lookup(frame: pl.LazyFrame, name: str, feature: FeatureSpec,
            dimensions: Mapping[str, pl.DataFrame], feature_name: str) -> pl.LazyFrame:
    block = feature.lookup
    dim = dimensions[block.dimension].select(block.dimension_key, block.column)
    duplicated = dim.filter(pl.col(block.dimension_key).is_duplicated())
    if duplicated.height:
        example = duplicated.get_column(block.dimension_key)[0]
        raise FeatureComputationError(
            f"feature '{feature_name}': {block.dimension}.{block.dimension_key} is not unique "
            f"(e.g. {example!r}); a lookup needs one row per key"
        )
    right = dim.lazy().rename({block.dimension_key: "__lookup_key", block.column: name})
    return frame.join(right, left_on=block.key, right_on="__lookup_key", how="left")


def source_columns(fs: FeatureSetSpec) -> list[str]:
    """The columns of the source product the feature set reads."""
    needed: list[str] = [fs.entity, fs.timestamp, *fs.labels]
    defined: set[str] = set()
    for name, feature in fs.features.items():
        for operand in feature.operands():
            if operand not in defined and operand not in needed:
                needed.append(operand)
        defined.add(name)
    return needed


def in_zone(frame: pl.LazyFrame, timezone: str | None) -> pl.LazyFrame:
    """Time-zone-aware columns shown in `timezone`: their days and date parts are that zone's.

    Naive timestamps are wall-clock times already and stay as they are.
    """
    if timezone is None:
        return frame
    aware = [c for c, t in frame.collect_schema().items() if isinstance(t, pl.Datetime) and t.time_zone]
    return frame.with_columns(pl.col(aware).dt.convert_time_zone(timezone)) if aware else frame


def compile_features(fs: FeatureSetSpec, source: pl.LazyFrame,
                     dimensions: Mapping[str, pl.DataFrame] | None = None,
                     timezone: str | None = None) -> pl.LazyFrame:
    """The feature set as a lazy frame: entity, timestamp, labels, then the kept features.

    `timezone` (the partitions' zone) decides which day, hour, ... an aware timestamp is on.
    """
    frame = in_zone(source, timezone).with_columns(pl.col(fs.timestamp).dt.date().alias(DAY))
    for name, feature in fs.features.items():
        if feature.kind == "rolling":
            frame = _rolling(frame, JOINED, feature.rolling)
        elif feature.kind == "lag":
            frame = _lag(frame, JOINED, feature.lag)
        elif feature.kind == "lookup":
            frame = _lookup(frame, JOINED, feature, dimensions or {}, name)
        else:
            frame = frame.with_columns(_row_expression(feature).alias(name))
            continue
        # Joined under a scratch name, then renamed: a feature may reuse a source column's name.
        frame = frame.with_columns(pl.col(JOINED).alias(name)).drop(JOINED)
    output = [fs.entity, fs.timestamp, *fs.labels, *fs.output_features()]
    return frame.select(output).sort([fs.timestamp, fs.entity])
