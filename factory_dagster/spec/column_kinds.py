"""What kind of value a column holds, as far as the spec knows: enough to refuse a feature that
cannot work (a ratio of strings, an hour of a number) when the spec loads, not when it runs."""

from __future__ import annotations

from typing import Literal

Kind = Literal["numeric", "string", "bool", "date", "timestamp", "unknown"]

DECLARED: dict[str, Kind] = {
    "int": "numeric",
    "float": "numeric",
    "string": "string",
    "bool": "bool",
    "date": "date",
    "timestamp": "timestamp",
}
_DBT_NUMERIC = (
    "int",
    "bigint",
    "smallint",
    "tinyint",
    "hugeint",
    "integer",
    "double",
    "float",
    "real",
    "decimal",
    "numeric",
)


def dbt_kind(data_type: str) -> Kind:
    """The kind of a column from the data_type documented in a dbt YAML file."""
    name = data_type.strip().lower()
    if not name:
        return "unknown"
    if name.startswith(_DBT_NUMERIC):
        return "numeric"
    if name.startswith(("varchar", "text", "string", "char")):
        return "string"
    if name.startswith("bool"):
        return "bool"
    if name.startswith("timestamp") or name.startswith("datetime"):
        return "timestamp"
    if name == "date":
        return "date"
    return "unknown"


def kind_of_value(value: object) -> Kind:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "numeric"
    return "string" if isinstance(value, str) else "unknown"
