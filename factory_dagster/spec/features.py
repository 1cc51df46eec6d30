"""The feature vocabulary: the building blocks a feature set may use, as typed spec models.

Every feature is exactly one block. Operands name a column of the feature set's source or a
feature declared earlier in the same set. `products/feature_blocks.py` compiles them to polars.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    field_validator,
    model_validator,
)

ValueType = Literal["int", "float", "string", "bool"]
DatePart = Literal["year", "month", "day", "weekday", "hour", "minute", "day_of_year", "week"]
Aggregation = Literal["mean", "sum", "count", "min", "max"]
Comparison = Literal["gt", "ge", "lt", "le", "eq", "ne"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    operand_fields: ClassVar[tuple[str, ...]] = ("column",)

    def operands(self) -> list[str]:
        """Names this block reads (columns of the source or earlier features)."""
        names: list[str] = []
        for field_name in self.operand_fields:
            value = getattr(self, field_name)
            names.extend(value if isinstance(value, list) else [value])
        return names


class Cast(_Block):
    column: str
    to: ValueType



class DatePartOf(_Block):
    column: str
    part: DatePart



class Bucket(_Block):
    column: str
    boundaries: list[float] = Field(min_length=1)
    labels: list[str] | None = None

    @model_validator(mode="after")
    def _check(self) -> Bucket:
        if list(self.boundaries) != sorted(set(self.boundaries)):
            raise ValueError("boundaries must be strictly increasing")
        if self.labels is not None and len(self.labels) != len(self.boundaries) + 1:
            raise ValueError(
                f"labels needs {len(self.boundaries) + 1} entries (one more than boundaries), "
                f"got {len(self.labels)}"
            )
        return self



class Ratio(_Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("numerator", "denominator")
    numerator: str
    denominator: str


class Difference(_Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("left", "right")
    left: str
    right: str


class Compare(_Block):
    column: str
    op: Comparison
    value: float | int | str | bool



class Lookup(_Block):
    """Join to a dimension product on a key and take one of its columns."""

    operand_fields: ClassVar[tuple[str, ...]] = ("key",)
    dimension: str
    key: str
    dimension_key: str
    column: str


class _PerKeyWindow(_Block):
    operand_fields: ClassVar[tuple[str, ...]] = ("value", "by")
    value: str
    by: list[str] = Field(min_length=1)
    agg: Aggregation = "mean"

    @field_validator("by", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class Rolling(_PerKeyWindow):
    """Aggregate of `value` per key over the `window_days` full days before each row's day."""

    window_days: PositiveInt


class Lag(_PerKeyWindow):
    """The daily aggregate of `value` per key, `days` days before each row's day."""

    days: PositiveInt


BLOCKS: dict[str, type[_Block] | type[str]] = {
    "column": str,
    "cast": Cast,
    "date_part": DatePartOf,
    "bucket": Bucket,
    "ratio": Ratio,
    "difference": Difference,
    "compare": Compare,
    "lookup": Lookup,
    "rolling": Rolling,
    "lag": Lag,
}
WINDOW_BLOCKS = ("rolling", "lag")


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
            raise ValueError(
                f"a feature takes exactly one building block ({', '.join(BLOCKS)}); got {got}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in BLOCKS if getattr(self, name) is not None)

    @property
    def block(self) -> _Block | str:
        return getattr(self, self.kind)

    def operands(self) -> list[str]:
        block = self.block
        return [block] if isinstance(block, str) else block.operands()

    def lookback_days(self) -> int:
        """How many days before a row's day this feature reads."""
        if self.rolling is not None:
            return self.rolling.window_days
        if self.lag is not None:
            return self.lag.days
        return 0
