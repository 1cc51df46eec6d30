"""Partitions declared in the spec, as Dagster definitions, and the windows a run covers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from factory_dagster.spec.time import PartitionsSpec

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
PARTITION = "dagster/partition"


@lru_cache(maxsize=32)
def _daily(start: dt.date, end: dt.date | None, timezone: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(
        start_date=start.isoformat(), end_date=end.isoformat() if end else None, timezone=timezone
    )


def partitions_def(spec: PartitionsSpec) -> dg.DailyPartitionsDefinition:
    return _daily(spec.start, spec.end, spec.timezone)


@dataclass(frozen=True)
class Window:
    """The local days a run covers (inclusive) in the partitions' time zone."""

    first: dt.date
    last: dt.date
    timezone: str

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    @property
    def keys(self) -> list[str]:
        return [day.isoformat() for day in self.days]

    def parameters(self) -> dict[str, Any]:
        """Suite parameters a gate can use: the window as aware and as local wall-clock times."""
        zone = ZoneInfo(self.timezone)
        start = dt.datetime.combine(self.first, dt.time(), zone)
        end = dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time(), zone)
        return {
            "partition_start": start,
            "partition_end": end,
            "partition_start_local": start.replace(tzinfo=None),
            "partition_end_local": end.replace(tzinfo=None),
            "partition_days": len(self.days),
        }


def window_of(context: dg.AssetExecutionContext, spec: PartitionsSpec) -> Window:
    """The window of a partitioned step: one day or a range."""
    if not context.has_partition_key_range and not context.has_partition_key:
        raise dg.Failure(
            description="this asset is partitioned: run it for a partition or a partition range "
            "(e.g. factory backfill --start ... --end ...)",
            allow_retries=False,
        )
    keys = context.partition_key_range
    return Window(dt.date.fromisoformat(keys.start), dt.date.fromisoformat(keys.end), spec.timezone)


def window_from_tags(tags: Mapping[str, str], spec: PartitionsSpec) -> Window | None:
    """The window of a run from its tags (asset checks see the run, not a partition)."""
    if RANGE_START in tags and RANGE_END in tags:
        return Window(dt.date.fromisoformat(tags[RANGE_START]), dt.date.fromisoformat(tags[RANGE_END]), spec.timezone)
    if PARTITION in tags:
        day = dt.date.fromisoformat(tags[PARTITION])
        return Window(day, day, spec.timezone)
    return None


def full_window(spec: PartitionsSpec) -> Window:
    definition = partitions_def(spec)
    keys = definition.get_partition_keys()
    return Window(dt.date.fromisoformat(keys[0]), dt.date.fromisoformat(keys[-1]), spec.timezone)


def check_range(definition: dg.PartitionsDefinition, first: str | None, last: str | None) -> tuple[str, str]:
    """`first`..`last` as partition keys of `definition` (its whole range by default).

    Raises ValueError with a one-line reason for a key that is not a partition or an empty range.
    """
    available = definition.get_partition_keys()
    if not available:
        raise ValueError("there is no partition yet")
    start, end = first or available[0], last or available[-1]
    for key in (start, end):
        if key not in available:
            raise ValueError(f"{key} is not a partition (partitions: {available[0]}..{available[-1]})")
    if start > end:
        raise ValueError(f"the range {start}..{end} is empty")
    return start, end
