"""Gates on warehouse tables the factory does not write itself (dbt models): separate blocking checks.

dbt has already replaced the table when the check runs, so the gate cannot keep it from readers;
it keeps everything downstream from being rebuilt on it (blocking), and quarantines a copy.
"""

import dagster as dg
import polars as pl
from dagster import AssetCheckExecutionContext

from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK, Gate
from factory_dagster.products.catalog import relation
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.quarantine import quarantine
from factory_dagster.storage.warehouse import read_arrow


def build_table_gate_check(spec: FactorySpec, product: str, gate: Gate) -> dg.AssetChecksDefinition:
    spec_ = gate.check_spec()

    @dg.asset_check(
        asset=gate.asset_key,
        name=GATE_CHECK,
        blocking=True,
        description=spec_.description,
        metadata=spec_.metadata,
    )
    def _gate(context: AssetCheckExecutionContext, factory: FactoryResource) -> dg.AssetCheckResult:
        home = factory.paths
        frame = pl.from_arrow(read_arrow(home.warehouse, f"select * from {relation(spec, product)}"))
        result = gate.evaluate(frame)
        history.record(home, gate.asset, context.run.run_id, result)
        extra = {}
        if result.blocking:
            folder = quarantine(home, gate.asset, context.run.run_id, result.reason(), frame)
            extra = {"quarantine": str(folder)}
        return gate.check_result(result, extra)

    return _gate
