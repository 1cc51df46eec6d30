"""The feature vocabulary: the building blocks a feature set may use.

Every feature is exactly one block. Each block owns what it reads (`operands`), the kind of
value it produces and why its operands may not fit (`result`), how many days back it looks,
and its polars translation (`apply`). Row-wise blocks are expressions; `lookup` is a left join
to a dimension; `rolling` and `lag` aggregate per key and day, then join back on strictly
earlier days, so no feature ever sees its own day or the future. Adding a block is adding a
class here (registered by `@block`) and its field on `FeatureSpec`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import ClassVar, Literal, TypeVar

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, field_validator, model_validator

from factory_dagster.spec.column_kinds import Kind, kind_of_value

ValueType = Literal["int", "float", "string", "bool"]
DatePart = Literal["year", "month", "day", "weekday", "hour", "minute", "day_of_year", "week"]
Aggregation = Literal["mean", "sum", "count", "min", "max"]
Comparison = Literal["gt", "ge", "lt", "le", "eq", "ne"]

DAY = "__factory_day"
JOINED = "__factory_joined"  # a joined result before it takes its name (which may be a source column's)
TEMPORAL = ("date", "timestamp")
Dimensions = Mapping[str, pl.DataFrame]


class FeatureComputationError(Exception):
    """Data violates an assumption of a feature (e.g. a dimension key is not unique)."""


BLOCKS: dict[str, type[Block]] = {}
B = TypeVar("B", bound="type[Block]")


def block(name: str) -> Callable[[B], B]:
    """Register a block class under the spec key that selects it (`cast: {...}`)."""

    def register(cls: B) -> B:
        cls.name = name
        BLOCKS[name] = cls
        return cls

    return register


def named(frame: pl.LazyFrame, name: str) -> pl.LazyFrame:
    """The joined result takes the feature's name, replacing a source column of that name."""
    return frame.with_columns(pl.col(JOINED).alias(name)).drop(JOINED)


class Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: ClassVar[str]
    operand_fields: ClassVar[tuple[str, ...]] = ("column",)
    windowed: ClassVar[bool] = False  # reads strictly earlier days only: cannot leak its row's label

    def operands(self) -> list[str]:
        """Names this block reads (columns of the source or earlier features)."""
        names: list[str] = []
        for field_name in self.operand_fields:
            value = getattr(self, field_name)
            names.extend(value if isinstance(value, list) else [value])
        return names

    def lookback_days(self) -> int:
        """How many days before a row's day this block reads."""
        return 0

    def result(self, of: Mapping[str, Kind], dimension_kinds: Mapping[str, Kind] | None) -> tuple[Kind, str | None]:
        """The kind of value produced, and why the operands (`of`: operand → kind) do not fit."""
        raise NotImplementedError

    def need(self, of: Mapping[str, Kind], operands: list[str], allowed: tuple[str, ...], what: str) -> str | None:
        for operand in operands:
            if of[operand] not in (*allowed, "unknown"):
                return f"'{operand}' is {of[operand]}: {self.name} needs {what}"
        return None

    def expression(self) -> pl.Expr:
        """A row-wise block's value (other blocks override `apply`)."""
        raise NotImplementedError

    def apply(self, frame: pl.LazyFrame, name: str, dimensions: Dimensions) -> pl.LazyFrame:
        """`frame` with this block's value as column `name` (which may replace a source column)."""
        return frame.with_columns(self.expression().alias(name))


@block("column")
class Column(Block):
    """Pass a column (or an earlier feature) through: `name: column` in the spec."""

    column: str

    def result(self, of, dimension_kinds):
        return of[self.column], None

    def expression(self) -> pl.Expr:
        return pl.col(self.column)


CAST_TYPES = {"int": pl.Int64, "float": pl.Float64, "string": pl.String, "bool": pl.Boolean}
CAST_KINDS: dict[str, Kind] = {"int": "numeric", "float": "numeric", "string": "string", "bool": "bool"}


@block("cast")
class Cast(Block):
    column: str
    to: ValueType

    def result(self, of, dimension_kinds):
        bad = of[self.column] in TEMPORAL and self.to == "bool"
        return CAST_KINDS[self.to], (f"'{self.column}' is {of[self.column]}: it cannot become bool" if bad else None)

    def expression(self) -> pl.Expr:
        return pl.col(self.column).cast(CAST_TYPES[self.to], strict=False)


DATE_PARTS: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "year": lambda e: e.dt.year(),
    "month": lambda e: e.dt.month(),
    "day": lambda e: e.dt.day(),
    "weekday": lambda e: e.dt.weekday(),  # 1 = Monday … 7 = Sunday
    "hour": lambda e: e.dt.hour(),
    "minute": lambda e: e.dt.minute(),
    "day_of_year": lambda e: e.dt.ordinal_day(),
    "week": lambda e: e.dt.week(),
}


@block("date_part")
class DatePartOf(Block):
    column: str
    part: DatePart

    def result(self, of, dimension_kinds):
        allowed = ("timestamp",) if self.part in ("hour", "minute") else TEMPORAL
        return "numeric", self.need(
            of, [self.column], allowed, "a timestamp" if len(allowed) == 1 else "a date or timestamp"
        )

    def expression(self) -> pl.Expr:
        return DATE_PARTS[self.part](pl.col(self.column)).cast(pl.Int32)


@block("bucket")
class Bucket(Block):
    column: str
    boundaries: list[float] = Field(min_length=1)
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> Bucket:
        if list(self.boundaries) != sorted(set(self.boundaries)):
            raise ValueError("boundaries must be strictly increasing")
        if self.labels is not None and len(self.labels) != len(self.boundaries) + 1:
            raise ValueError(
                f"labels needs {len(self.boundaries) + 1} entries (one more than boundaries), got {len(self.labels)}"
            )
        return self

    def result(self, of, dimension_kinds):
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            return "string", "labels must be distinct"
        return ("string" if self.labels else "numeric"), self.need(of, [self.column], ("numeric",), "a number")

    def expression(self) -> pl.Expr:
        labels = self.labels or [str(i) for i in range(len(self.boundaries) + 1)]
        bucketed = pl.col(self.column).cut(self.boundaries, labels=labels).cast(pl.String)
        return bucketed if self.labels else bucketed.cast(pl.Int32)


@block("ratio")
class Ratio(Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("numerator", "denominator")
    numerator: str
    denominator: str

    def result(self, of, dimension_kinds):
        return "numeric", self.need(of, self.operands(), ("numeric",), "numbers")

    def expression(self) -> pl.Expr:
        denominator = pl.col(self.denominator).cast(pl.Float64)
        return pl.when(denominator != 0).then(pl.col(self.numerator).cast(pl.Float64) / denominator)


@block("difference")
class Difference(Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("left", "right")
    left: str
    right: str

    def result(self, of, dimension_kinds):
        return "numeric", self.need(of, self.operands(), ("numeric",), "numbers")

    def expression(self) -> pl.Expr:
        return pl.col(self.left) - pl.col(self.right)


COMPARE: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}


def compare(column: str, op: str, value: object) -> pl.Expr:
    """`column <op> value` (gt, ge, lt, le, eq, ne); null where the column is null."""
    return COMPARE[op](pl.col(column), pl.lit(value))


@block("compare")
class Compare(Block):
    column: str
    op: Comparison
    value: float | int | str | bool

    def result(self, of, dimension_kinds):
        value_kind = kind_of_value(self.value)
        column_kind = of[self.column]
        if column_kind not in ("unknown", value_kind) and not (column_kind in TEMPORAL and value_kind == "string"):
            return "bool", f"'{self.column}' is {column_kind} but the value {self.value!r} is {value_kind}"
        return "bool", None

    def expression(self) -> pl.Expr:
        return compare(self.column, self.op, self.value)


@block("lookup")
class Lookup(Block):
    """Join to a dimension product on a key and take one of its columns."""

    operand_fields: ClassVar[tuple[str, ...]] = ("key",)
    dimension: str
    key: str
    dimension_key: str
    column: str

    def result(self, of, dimension_kinds):
        if self.column == self.dimension_key:
            return "unknown", f"column and dimension_key are both '{self.column}': take another column"
        kinds = dimension_kinds or {}
        result: Kind = kinds.get(self.column, "unknown")
        key_kind, dim_key_kind = of[self.key], kinds.get(self.dimension_key, "unknown")
        if "unknown" not in (key_kind, dim_key_kind) and key_kind != dim_key_kind:
            return result, f"'{self.key}' is {key_kind} but {self.dimension}.{self.dimension_key} is {dim_key_kind}"
        return result, None

    def apply(self, frame: pl.LazyFrame, name: str, dimensions: Dimensions) -> pl.LazyFrame:
        dim = dimensions[self.dimension].select(self.dimension_key, self.column)
        duplicated = dim.filter(pl.col(self.dimension_key).is_duplicated())
        if duplicated.height:
            example = duplicated.get_column(self.dimension_key)[0]
            raise FeatureComputationError(
                f"feature '{name}': {self.dimension}.{self.dimension_key} is not unique "
                f"(e.g. {example!r}); a lookup needs one row per key"
            )
        right = dim.lazy().rename({self.dimension_key: "__lookup_key", self.column: JOINED})
        return named(frame.join(right, left_on=self.key, right_on="__lookup_key", how="left"), name)


class PerKeyWindow(Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("value", "by")
    windowed: ClassVar[bool] = True
    value: str
    by: list[str] = Field(min_length=1)
    agg: Aggregation = "mean"

    @field_validator("by", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def result(self, of, dimension_kinds):
        return "numeric", self.need(of, [self.value], ("numeric", "bool"), "a number or a boolean")

    def daily(self, frame: pl.LazyFrame) -> pl.LazyFrame:
        value = pl.col(self.value).cast(pl.Float64)
        return frame.group_by([*self.by, DAY]).agg(
            value.sum().alias("__sum"),
            value.count().alias("__count"),
            value.min().alias("__min"),
            value.max().alias("__max"),
        )

    def combine(self, sums: pl.Expr, counts: pl.Expr, mins: pl.Expr, maxs: pl.Expr) -> pl.Expr:
        if self.agg == "mean":
            return pl.when(counts > 0).then(sums / counts)
        if self.agg == "sum":
            return sums
        if self.agg == "count":
            return counts
        return mins if self.agg == "min" else maxs


@block("rolling")
class Rolling(PerKeyWindow):
    """Aggregate of `value` per key over the `window_days` full days before each row's day."""

    window_days: PositiveInt

    def lookback_days(self) -> int:
        return self.window_days

    def apply(self, frame: pl.LazyFrame, name: str, dimensions: Dimensions) -> pl.LazyFrame:
        daily = self.daily(frame).sort(DAY)
        # closed="left": the window for day d is [d - window_days, d), i.e. strictly earlier days.
        windowed = daily.rolling(index_column=DAY, period=f"{self.window_days}d", closed="left", group_by=self.by).agg(
            pl.col("__sum").sum().alias("s"),
            pl.col("__count").sum().alias("c"),
            pl.col("__min").min().alias("lo"),
            pl.col("__max").max().alias("hi"),
        )
        feature = self.combine(pl.col("s"), pl.col("c"), pl.col("lo"), pl.col("hi")).alias(JOINED)
        return named(
            frame.join(windowed.select([*self.by, DAY, feature]), on=[*self.by, DAY], how="left", nulls_equal=True),
            name,
        )


@block("lag")
class Lag(PerKeyWindow):
    """The daily aggregate of `value` per key, `days` days before each row's day."""

    days: PositiveInt

    def lookback_days(self) -> int:
        return self.days

    def apply(self, frame: pl.LazyFrame, name: str, dimensions: Dimensions) -> pl.LazyFrame:
        daily = self.daily(frame)
        shifted = daily.with_columns((pl.col(DAY) + dt.timedelta(days=self.days)).alias(DAY))
        feature = self.combine(pl.col("__sum"), pl.col("__count"), pl.col("__min"), pl.col("__max"))
        return named(
            frame.join(
                shifted.select([*self.by, DAY, feature.alias(JOINED)]), on=[*self.by, DAY], how="left", nulls_equal=True
            ),
            name,
        )


class FeatureSpec(BaseModel):
    """One named feature: exactly one building block, a description, and whether it is output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str | None = None
    cast: Cast | None = None
    date_part: DatePartOf | None = None
    bucket: Bucket | None = None
    ratio: Ratio | None = None
    difference: Difference | None = None
    compare: Compare | None = None
    lookup: Lookup | None = None
    rolling: Rolling | None = None
    lag: Lag | None = None
    description: str | None = None
    keep: bool = True

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        # `name: some_column` is shorthand for a pass-through.
        return {"column": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exactly_one_block(self) -> FeatureSpec:
        chosen = [name for name in BLOCKS if getattr(self, name) is not None]
        if len(chosen) != 1:
            got = ", ".join(chosen) if chosen else "none"
            raise ValueError(f"a feature takes exactly one building block ({', '.join(BLOCKS)}); got {got}")
        return self

    @property
    def kind(self) -> str:
        return next(name for name in BLOCKS if getattr(self, name) is not None)

    @property
    def block(self) -> Block:
        value = getattr(self, self.kind)
        return Column(column=value) if isinstance(value, str) else value

    def operands(self) -> list[str]:
        return self.block.operands()

    def lookback_days(self) -> int:
        return self.block.lookback_days()
