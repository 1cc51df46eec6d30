"""The reference engine: Great Expectations 1.x validating a pandas copy of the frame.

GX is imported here, inside the functions, so that loading definitions never pays for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import polars as pl

from factory_dagster.gates.engines.parameters import PARAMETER, is_parameter, parameter_names
from factory_dagster.gates.outcome import ExpectationOutcome
from factory_dagster.gates.suites import Expectation

NAME = "gx"
PARTIAL_UNEXPECTED = 20
_INDEX = "factory_index"


def _quiet() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@lru_cache(maxsize=1)
def _batch_definition() -> Any:
    _quiet()
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas("factory_frames")
    return source.add_dataframe_asset("frame").add_batch_definition_whole_dataframe("whole")


def _build(item: Mapping[str, Any]) -> tuple[Any, str | None]:
    """GX's own expectation object for a suite entry, or why GX refuses it."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    fields = {k: item[k] for k in ("type", "kwargs", "meta", "severity", "notes", "description") if k in item}
    try:
        return ExpectationConfiguration(**fields).to_domain_obj(), None
    except Exception as exc:  # GX raises several types for unknown types and bad arguments
        return None, " ".join(str(exc).split())[:300]


def parse_errors(document: Mapping[str, Any]) -> list[tuple[int | None, str]]:
    """Why GX cannot build this suite document, per expectation index (empty when it can)."""
    _quiet()
    errors = []
    for index, item in enumerate(document.get("expectations", [])):
        _, error = _build(item)
        if error:
            errors.append((index, error))
    return errors


def _error_message(exception_info: Any) -> str | None:
    """GX reports errors flat or keyed by metric; either way an errored expectation is a failure."""
    if not exception_info:
        return None
    if exception_info.get("raised_exception"):
        return str(exception_info.get("exception_message") or "raised an exception")
    for value in exception_info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return str(value.get("exception_message") or "raised an exception")
    return None


def _missing_parameters(kwargs: Mapping[str, Any], parameters: Mapping[str, Any]) -> list[str]:
    """Suite parameters an expectation uses that were not provided (GX would fail the whole suite)."""
    missing = []
    for value in kwargs.values():
        if is_parameter(value):
            missing += [n for n in parameter_names(value[PARAMETER]) if n not in parameters]
    return missing


def validate(
    frame: pl.DataFrame, expectations: Sequence[Expectation], parameters: Mapping[str, Any] | None = None
) -> list[ExpectationOutcome]:
    """Run GX on a pandas copy of `frame`; outcomes in the order of `expectations`."""
    if not expectations:
        return []
    by_index = {e.index: e for e in expectations}
    outcomes: dict[int, ExpectationOutcome] = {}
    built = []
    parameters = dict(parameters or {})
    for e in expectations:
        missing = _missing_parameters(e.kwargs, parameters)
        if missing:
            outcomes[e.index] = ExpectationOutcome(
                e, False, NAME, error=f"suite parameter(s) not provided: {', '.join(missing)}"
            )
            continue
        gx_expectation, error = _build(
            {"type": e.type, "kwargs": e.kwargs, "severity": e.severity, "meta": {**e.meta, _INDEX: e.index}}
        )
        if error:
            outcomes[e.index] = ExpectationOutcome(e, False, NAME, error=f"GX cannot build it: {error}")
        else:
            built.append(gx_expectation)
    if not built:
        return [outcomes[e.index] for e in expectations]
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    try:
        results = _run(batch, built, parameters)
    except Exception:
        # GX fails a whole suite for one expectation it cannot evaluate (a parameter expression,
        # say): run them one by one, so that only the culprits error.
        results = []
        for gx_expectation in built:
            try:
                results += _run(batch, [gx_expectation], parameters)
            except Exception as exc:  # GX raises many types: each is this expectation's error
                expectation = by_index[gx_expectation.meta[_INDEX]]
                reason = " ".join(str(exc).split())[:300]
                outcomes[expectation.index] = ExpectationOutcome(expectation, False, NAME, error=reason)
    for item in results:
        expectation = by_index[item.expectation_config.meta[_INDEX]]
        data = item.result or {}
        error = _error_message(item.exception_info)
        outcomes[expectation.index] = ExpectationOutcome(
            expectation=expectation,
            success=bool(item.success) and error is None,
            engine=NAME,
            observed=data.get("observed_value"),
            element_count=data.get("element_count"),
            missing_count=data.get("missing_count"),
            unexpected_count=data.get("unexpected_count"),
            unexpected_percent=data.get("unexpected_percent"),
            examples=list(data.get("partial_unexpected_list") or []),
            error=error,
        )
    return [outcomes[e.index] for e in expectations]


def _run(batch: Any, built: list[Any], parameters: Mapping[str, Any]) -> list[Any]:
    import great_expectations as gx

    result = batch.validate(
        gx.ExpectationSuite(name="factory_gate", expectations=built),
        expectation_parameters=parameters,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": PARTIAL_UNEXPECTED},
    )
    return list(result.results)
