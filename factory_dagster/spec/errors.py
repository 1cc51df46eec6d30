"""Spec errors: one line naming the file, the key path and the reason."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path


def display_path(path: Path | str) -> str:
    """A path as a user would type it: relative to the working directory when inside it."""
    path = Path(path)
    try:
        return os.path.relpath(path) if path.resolve().is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def known(names: Iterable[str], limit: int = 12) -> str:
    """`a, b, c` for an error message, shortened past `limit` names."""
    names = sorted(set(names))
    if not names:
        return "none declared"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class SpecError(Exception):
    """A factory spec is invalid. `str(error)` is the one-line message shown to users."""

    def __init__(self, file: Path | str | None, key: str, reason: str, line: int | None = None):
        self.file = Path(file) if file is not None else None
        self.key = key
        self.reason = reason
        self.line = line
        super().__init__(self.message)

    @property
    def message(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(display_path(self.file))
        if self.key:
            parts.append(self.key)
        text = ": ".join([*parts, self.reason])
        return f"{text} (line {self.line})" if self.line else text


class SpecErrors(SpecError):
    """Several spec errors found in one pass; the message lists them one per line."""

    def __init__(self, errors: list[SpecError]):
        self.errors = errors
        first = errors[0]
        super().__init__(first.file, first.key, first.reason, first.line)

    @property
    def message(self) -> str:
        return "\n".join(e.message for e in getattr(self, "errors", [])) or super().message
