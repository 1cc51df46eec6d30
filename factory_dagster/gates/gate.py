"""A gate: a GX suite bound to an asset, run by an engine, reported as a blocking asset check."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl

from factory_dagster.gates.engines import engine
from factory_dagster.gates.outcome import GateResult
from factory_dagster.gates.suites import Suite

GATE_CHECK = "quality_gate"
ENGINE_ENV = "FACTORY_GATE_ENGINE"


@dataclass(frozen=True)
class Gate:
    asset_key: dg.AssetKey
    suite: Suite
    engine: str  # as configured for the line; $FACTORY_GATE_ENGINE overrides it at run time

    @property
    def asset(self) -> str:
        return self.asset_key.to_user_string()

    def check_spec(self) -> dg.AssetCheckSpec:
        mix = self.suite.severity_mix()
        return dg.AssetCheckSpec(
            GATE_CHECK,
            asset=self.asset_key,
            blocking=True,
            description=(
                f"GX suite {self.suite.path.name}: {len(self.suite.expectations)} expectations "
                f"({mix['critical']} critical, {mix['warning']} warning, {mix['info']} info)"
            ),
            metadata={"suite": str(self.suite.path)},
        )

    def evaluate(self, frame: pl.DataFrame, parameters: Mapping[str, Any] | None = None) -> GateResult:
        started = time.perf_counter()
        name = os.environ.get(ENGINE_ENV) or self.engine
        outcomes = engine(name)(frame, self.suite.expectations, parameters)
        return GateResult(self.suite, outcomes, frame.height, time.perf_counter() - started)

    def check_result(self, result: GateResult, extra: Mapping[str, Any] | None = None) -> dg.AssetCheckResult:
        failed = result.failures("critical") + result.failures("warning")
        metadata: dict[str, Any] = {
            "expectations": dg.MetadataValue.md(result.markdown()),
            "failed_expectations": dg.MetadataValue.json([o.summary() for o in failed]),
            "suite": str(result.suite.path),
            "engine": ", ".join(f"{name}: {count}" for name, count in result.engines().items()),
            "row_count": dg.MetadataValue.int(result.row_count),
            "gate_seconds": dg.MetadataValue.float(round(result.seconds, 4)),
            **(extra or {}),
        }
        return dg.AssetCheckResult(
            asset_key=self.asset_key,
            check_name=GATE_CHECK,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR if result.blocking else dg.AssetCheckSeverity.WARN,
            description=None if result.passed else result.reason()[:1000],
            metadata=metadata,
        )
