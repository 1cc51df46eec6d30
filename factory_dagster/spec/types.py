"""Value types shared by the spec models: names, owners, durations, time zones."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

_OWNER = re.compile(r"^(team:[A-Za-z0-9_.-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _check_owner(value: str) -> str:
    if not _OWNER.match(value):
        raise ValueError(f"owner must be an email or 'team:<name>', got '{value}'")
    return value


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"'{value}' is not a valid name (letters, digits, underscores)")
    return value


Owner = Annotated[str, AfterValidator(_check_owner)]
Name = Annotated[str, AfterValidator(_check_name)]
NonEmpty = Annotated[str, Field(min_length=1)]
ColumnType = Literal["int", "float", "string", "bool", "date", "timestamp"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_DURATION = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _parse_duration(value: object) -> object:
    if isinstance(value, str):
        match = _DURATION.match(value.strip())
        if not match:
            raise ValueError(f"expected a duration like 30m, 26h, 8d or 2w, got {value!r}")
        return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    return value


Duration = Annotated[dt.timedelta, BeforeValidator(_parse_duration)]


def _check_timezone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/New_York)") from None
    return value


TimeZone = Annotated[str, AfterValidator(_check_timezone)]
