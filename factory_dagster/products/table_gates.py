"""Gates on warehouse tables the factory does not write itself (dbt models): separate blocking checks.

dbt has already replaced the table when the check runs, so the gate cannot keep it from readers;
it keeps everything downstream from being rebuilt on it (blocking), and quarantines a copy.
"""

import dagster as dg
import polars as pl
from dagster import AssetCheckExecutionContext

from factory_dagster.automation.partitions import full_window, window_from_tags
from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK, Gate
from factory_dagster.products.catalog import relation
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import quote, read_arrow


def build_table_gate_check(spec: FactorySpec, product: str, gate: Gate,
                           partitions: str | None = None) -> dg.AssetChecksDefinition:
    """`partitions`: the product's partitions, if any: the gate then reads the run's window only."""
    spec_ = gate.check_spec()
    partitions_spec = spec.partitions[partitions] if partitions else None
    date_column = spec.line.dbt.partitioned.date_column if partitions and spec.line.dbt else None

    @dg.asset_check(
        asset=gate.asset_key,
        name=GATE_CHECK,
        blocking=True,
        description=spec_.description,
        metadata=spec_.metadata,
    )
    def _gate(context: AssetCheckExecutionContext, factory: FactoryResource) -> dg.AssetCheckResult:
        home = factory.paths
        sql, params, parameters = f"select * from {relation(spec, product)}", [], None
        if partitions_spec is not None:
            window = window_from_tags(context.run.tags, partitions_spec) or full_window(partitions_spec)
            sql += f" where {quote(date_column)} between ? and ?"
            params, parameters = [window.first, window.last], window.parameters()
        frame = pl.from_arrow(read_arrow(home.warehouse, sql, params))
        result = gate.evaluate(frame, parameters)
        history.record(home, gate.asset, context.run.run_id, result)
        extra = {}
        if result.blocking:
            folder = quarantine(home, gate.asset, context.run.run_id, result.reason(), frame)
            extra = {"quarantine": str(folder)}
        return gate.check_result(result, extra)

    return _gate
