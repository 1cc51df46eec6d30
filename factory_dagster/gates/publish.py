"""Write, audit, publish: a candidate is validated before it replaces what readers see.

A candidate that fails a critical expectation goes to quarantine and is never published: the
asset is not materialized, its blocking check fails, downstream steps are skipped, and the
previous version stays in place, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl

from factory_dagster.gates import history
from factory_dagster.gates.gate import Gate
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.quarantine import quarantine


def audit_then_publish(
    context: dg.AssetExecutionContext,
    home: FactoryHome,
    gate: Gate | None,
    candidate: pl.DataFrame,
    publish: Callable[[], Mapping[str, Any]],
    files: list[Path] | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Yield the events of a gated write: a materialization with a passed (or warned) check, or a
    failed blocking check and nothing published. `publish()` writes and returns metadata."""
    if gate is None:
        yield dg.MaterializeResult(metadata=dict(publish()))
        return
    result = gate.evaluate(candidate, parameters)
    run_id = context.run.run_id
    partition = context.partition_key_range if context.has_partition_key_range else None
    history.record(home, gate.asset, run_id, result, str(partition) if partition else None)
    if result.blocking:
        folder = quarantine(
            home,
            gate.asset,
            run_id,
            result.reason(),
            candidate,
            files,
            {"failed_expectations": [o.summary() for o in result.failures("critical")]},
        )
        context.log.error(f"{gate.asset}: gate failed, candidate quarantined in {folder}: {result.reason()}")
        yield gate.check_result(
            result, {"quarantine": str(folder), "published": "no: the previous version is still served"}
        )
        return
    metadata = dict(publish())
    yield dg.MaterializeResult(metadata=metadata, check_results=[gate.check_result(result)])
