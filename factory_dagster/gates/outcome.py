"""What a gate found: one outcome per expectation, and the verdict of the whole suite."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from factory_dagster.gates.suites import Expectation, Suite
from factory_dagster.markdown import markdown_table

EXAMPLES_SHOWN = 5


@dataclass
class ExpectationOutcome:
    """GX's verdict and observations for one expectation (whichever engine computed them)."""

    expectation: Expectation
    success: bool
    engine: str
    observed: Any = None  # observed_value of aggregate expectations
    element_count: int | None = None
    missing_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    examples: list[Any] = field(default_factory=list)  # partial_unexpected_list
    error: str | None = None  # the expectation itself errored: a failure, never a pass

    @property
    def failed(self) -> bool:
        return not self.success or self.error is not None

    def summary(self) -> str:
        """One line: what failed and what was seen."""
        if self.error:
            return f"{self.expectation.label}: errored: {self.error}"
        if self.unexpected_count is not None:
            shown = ", ".join(_fmt(v) for v in self.examples[:EXAMPLES_SHOWN])
            percent = f" ({self.unexpected_percent:.3g}%)" if self.unexpected_percent is not None else ""
            return f"{self.expectation.label}: {self.unexpected_count} unexpected{percent}" + (
                f", e.g. {shown}" if shown else ""
            )
        return f"{self.expectation.label}: observed {_fmt(self.observed)}"

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["expectation"] = {
            "type": self.expectation.type,
            "kwargs": self.expectation.kwargs,
            "severity": self.expectation.severity,
            "index": self.expectation.index,
        }
        data["examples"] = [_fmt(v) for v in self.examples]
        data["observed"] = _jsonable(self.observed)
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", …" if len(value) > 8 else "") + "]"
    return repr(value) if isinstance(value, str) else str(value)


@dataclass
class GateResult:
    suite: Suite
    outcomes: list[ExpectationOutcome]
    row_count: int
    seconds: float

    def failures(self, severity: str | None = None) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.failed and (severity is None or o.expectation.severity == severity)]

    @property
    def passed(self) -> bool:
        """Info-level expectations inform; critical and warning ones decide."""
        return not self.failures("critical") and not self.failures("warning")

    @property
    def blocking(self) -> bool:
        return bool(self.failures("critical"))

    @property
    def severity(self) -> str:
        return "ERROR" if self.blocking else "WARN"

    def engines(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.outcomes:
            counts[outcome.engine] = counts.get(outcome.engine, 0) + 1
        return counts

    def reason(self) -> str:
        """One line for logs and the CLI: the failed expectations."""
        failed = self.failures("critical") or self.failures("warning")
        return "; ".join(o.summary() for o in failed) if failed else "all expectations met"

    def markdown(self) -> str:
        """The per-expectation table shown in the check's metadata in the Dagster UI."""
        rows = []
        for o in self.outcomes:
            result = "✅ pass" if not o.failed else ("⛔ error" if o.error else "❌ fail")
            observed = o.error or (_fmt(o.observed) if o.unexpected_count is None else f"{o.element_count} rows")
            rows.append(
                (
                    o.expectation.index,
                    f"`{o.expectation.label}`",
                    o.expectation.severity,
                    result,
                    observed,
                    o.unexpected_count,
                    None if o.unexpected_percent is None else f"{o.unexpected_percent:.4g}",
                    ", ".join(_fmt(v) for v in o.examples[:EXAMPLES_SHOWN]),
                    o.engine,
                )
            )
        return markdown_table(
            ["#", "expectation", "severity", "result", "observed", "unexpected", "unexpected %", "examples", "engine"],
            rows,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "suite_path": str(self.suite.path),
            "row_count": self.row_count,
            "seconds": self.seconds,
            "passed": self.passed,
            "severity": self.severity,
            "outcomes": [o.to_json() for o in self.outcomes],
        }
