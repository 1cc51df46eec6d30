"""Validation engines behind a gate: `gx` (the reference) and `polars` (one-pass fast path)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from factory_dagster.gates.outcome import ExpectationOutcome
from factory_dagster.gates.suites import Expectation

Engine = Callable[[pl.DataFrame, Sequence[Expectation], Mapping[str, Any] | None], list[ExpectationOutcome]]


def engine(name: str) -> Engine:
    """The validate function of an engine, imported on first use."""
    if name == "gx":
        from factory_dagster.gates.engines import gx_engine

        return gx_engine.validate
    if name == "polars":
        from factory_dagster.gates.engines import polars_engine

        return polars_engine.validate
    raise ValueError(f"unknown gate engine {name!r} (known: gx, polars)")
