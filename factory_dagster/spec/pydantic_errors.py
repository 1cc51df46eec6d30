"""Turn pydantic validation errors into one-line spec errors with real key paths."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "str": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "date": "a date (YYYY-MM-DD)",
}


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _real_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keep the parts of a pydantic `loc` that are keys of the input (drop union/validator tags)."""
    path: list[Any] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            path.append(part)
            current = current[part]
    return tuple(path)


def _unwrap(annotation: Any) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that validates the mapping found at `path`."""
    candidates: list[Any] = [model]
    for part in path:
        nxt: list[Any] = []
        for candidate in candidates:
            for ann in _unwrap(candidate):
                if isinstance(ann, type) and issubclass(ann, BaseModel):
                    field = ann.model_fields.get(part)
                    if field is not None:
                        nxt.append(field.annotation)
                elif typing.get_origin(ann) in (dict, list):
                    nxt.append(typing.get_args(ann)[-1])
        candidates = nxt
    for candidate in candidates:
        for ann in _unwrap(candidate):
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                return ann
    return None


def _reason(error: Mapping[str, Any], model: type[BaseModel], parent: tuple[Any, ...]) -> str:
    kind = error["type"]
    given = error.get("input")
    name = error["loc"][-1] if error["loc"] else ""
    if kind == "missing":
        return f"missing required field '{name}'"
    if kind == "extra_forbidden":
        owner = _model_at(model, parent)
        fields = [f.alias or n for n, f in owner.model_fields.items()] if owner else []  # `from`, not `from_`
        allowed = f" (allowed: {', '.join(fields)})" if owner else ""
        return f"unknown field '{name}'{allowed}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"expected one of {expected}, got {_describe(given)}"
    if kind in ("value_error", "assertion_error"):
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return message.removeprefix("Value error, ")
    for suffix in ("_parsing", "_type"):
        if kind.endswith(suffix):
            word = _TYPE_WORDS.get(kind.removesuffix(suffix), kind.removesuffix(suffix))
            return f"expected {word}, got {_describe(given)}"
    if kind == "too_short" and isinstance(given, (dict, list)):
        return "must not be empty"
    message = error["msg"].replace("Input should be", "must be").replace("Value should have", "must have")
    return f"{message[0].lower()}{message[1:]} (got {_describe(given)})"


def explain(exc: ValidationError, model: type[BaseModel], data: Any) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, reason) pairs for a validation error, one per problem."""
    found: list[tuple[tuple[Any, ...], str]] = []
    seen: set[tuple[Any, ...]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        if error["type"] in ("missing", "extra_forbidden"):
            parent = _real_path(data, loc[:-1])
            found.append((parent, _reason(error, model, parent)))
            continue
        path = _real_path(data, loc)
        if path in seen:  # a union reports one error per member: the first names what was given
            continue
        seen.add(path)
        found.append((path, _reason(error, model, path)))
    return found
