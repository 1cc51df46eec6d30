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

PARTITION_ROWS = "factory/partition_rows"  # in what `publish()` returns: rows per day, scoped below
WINDOW_ROWS = "factory/window_rows"  # on the window's last partition: the run's rows over its window


def scope_partition_rows(
    context: dg.AssetExecutionContext, metadata: Mapping[str, Any], asset_key: dg.AssetKey | None = None
) -> dict[str, Any]:
    """Each partition's own `dagster/row_count` (what the UI shows per partition); the rest of
    the metadata, with the window's total, on the window's last partition only. Returns what is
    left for the output itself (all of it for an unpartitioned write, else nothing).

    A range run records one materialization per partition, each carrying every key of the
    output's metadata: a window-wide table of rows per day would be stored once per day (its
    size squared: gigabytes over thousands of days), and a column schema and lineage ≈9 KB a
    day, serialized and written twice by the event log (most of a year's build bookkeeping).
    The last partition's is the asset's latest materialization: the UI, the run report and the
    lineage read the window's metadata there; an earlier day shows its own row count only.
    """
    rest = dict(metadata)
    counts = rest.pop(PARTITION_ROWS, None)
    if not counts:
        return rest
    rest.pop("dagster/row_count", None)  # the window's total would show as each day's count
    rest[WINDOW_ROWS] = dg.MetadataValue.int(sum(counts.values()))
    *_, last = counts
    for day, rows in counts.items():
        own = {"dagster/row_count": dg.MetadataValue.int(rows)}
        context.add_asset_metadata({**rest, **own} if day == last else own, asset_key, day)
    return {}


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
        yield dg.MaterializeResult(metadata=scope_partition_rows(context, publish()))
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
    metadata = scope_partition_rows(context, publish())
    yield dg.MaterializeResult(metadata=metadata, check_results=[gate.check_result(result)])
