"""GX 1.x expectation suites stored as JSON files, one per gated asset, named after its key.

`expectations/<line>/raw.flights.json` gates the asset `raw/flights`. Suites are checked at
definitions load without importing GX (structure, severities, the columns they name). GX itself
parses each suite when `factory prepare`, `validate` or `build` asks (`check_with_gx`), once per
file content, since importing GX costs seconds; a suite GX cannot run fails its gate closed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from factory_dagster.spec.errors import SpecError
from factory_dagster.spec.yaml_source import not_utf8

SEVERITIES = ("critical", "warning", "info")
COLUMN_KWARGS = ("column", "column_A", "column_B")
COLUMN_LIST_KWARGS = ("column_list", "column_set")


@dataclass(frozen=True)
class Expectation:
    index: int
    type: str
    kwargs: dict[str, Any]
    severity: str = "critical"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        names = [self.kwargs[k] for k in COLUMN_KWARGS if isinstance(self.kwargs.get(k), str)]
        for key in COLUMN_LIST_KWARGS:
            value = self.kwargs.get(key)
            if isinstance(value, list):
                names += [v for v in value if isinstance(v, str)]
        return names

    @property
    def label(self) -> str:
        """`expect_column_values_to_not_be_null(flight_id)`: what the expectation is about."""
        subject = ", ".join(self.columns[:3]) + ("…" if len(self.columns) > 3 else "")
        return f"{self.type}({subject})"


@dataclass(frozen=True)
class Suite:
    name: str
    path: Path
    expectations: tuple[Expectation, ...]
    document: dict[str, Any]

    @property
    def asset_key(self) -> str:
        """The asset this suite gates, as a user string (`raw/flights`)."""
        return self.name.replace(".", "/")

    def severity_mix(self) -> dict[str, int]:
        mix = {s: 0 for s in SEVERITIES}
        for expectation in self.expectations:
            mix[expectation.severity] += 1
        return mix


def _error(path: Path, key: str, reason: str) -> SpecError:
    return SpecError(path, key, reason)


def parse_suite(path: Path) -> Suite:
    """Read one suite file and check its structure; raises SpecError naming file and key."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _error(path, "", f"cannot read suite: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise _error(path, "", not_utf8(exc.object, exc.start)) from None
    except json.JSONDecodeError as exc:
        raise _error(path, "", f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(document, dict):
        raise _error(path, "", "a suite is a JSON object with 'name' and 'expectations'")
    name = document.get("name")
    if not isinstance(name, str) or name != path.stem:
        raise _error(path, "name", f"the suite name {name!r} must equal the file name {path.stem!r}")
    raw = document.get("expectations")
    if not isinstance(raw, list):
        raise _error(path, "expectations", "expected a list of expectations")
    expectations = []
    for index, item in enumerate(raw):
        where = f"expectations[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise _error(path, where, "each expectation needs a 'type' (e.g. expect_column_values_to_not_be_null)")
        if not item["type"].startswith("expect_"):
            raise _error(path, f"{where}.type", f"{item['type']!r} is not an expectation type")
        kwargs = item.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise _error(path, f"{where}.kwargs", "expected an object")
        severity = item.get("severity", "critical")
        if severity not in SEVERITIES:
            raise _error(path, f"{where}.severity", f"expected one of {', '.join(SEVERITIES)}, got {severity!r}")
        expectations.append(Expectation(index, item["type"], kwargs, severity, item.get("meta") or {}))
    return Suite(name, path, tuple(expectations), document)


def check_columns(suite: Suite, columns: set[str] | None, asset: str) -> None:
    """Every column a suite names must be a column of the asset it gates (when those are known)."""
    if columns is None:
        return
    for expectation in suite.expectations:
        if expectation.type in (
            "expect_table_columns_to_match_set",
            "expect_table_columns_to_match_ordered_list",
            "expect_column_to_exist",
        ):
            continue  # these assert the schema itself; a missing column is their finding
        for column in expectation.columns:
            if column not in columns:
                raise _error(
                    suite.path,
                    f"expectations[{expectation.index}].kwargs",
                    f"{expectation.type} names column {column!r}, which {asset} does not have "
                    f"(columns: {', '.join(sorted(columns))})",
                )


def check_with_gx(suite: Suite, cache: Path | None) -> None:
    """Let GX itself parse the suite (expectation types and their arguments), once per content:
    a marker file in `cache` (under the factory home) records a suite GX has parsed."""
    digest = hashlib.sha256(suite.path.read_bytes() + version("great_expectations").encode()).hexdigest()
    marker = cache / digest if cache is not None else None
    if marker is not None and marker.exists():
        return
    from factory_dagster.gates.engines.gx_engine import parse_errors

    errors = parse_errors(suite.document)
    if errors:
        index, reason = errors[0]
        raise _error(suite.path, f"expectations[{index}]" if index is not None else "", f"GX cannot parse it: {reason}")
    if marker is None:
        return
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:  # no writable cache: GX parses the suite again at the next load
        pass


def load_suites(suites_dir: Path, asset_columns: Mapping[str, set[str] | None]) -> dict[str, Suite]:
    """Suites by gated asset key. A suite for an unknown asset, or naming unknown columns, is an error."""
    if not suites_dir.is_dir():
        raise _error(suites_dir, "line.gates.suites_dir", "expectations folder not found")
    suites: dict[str, Suite] = {}
    for path in sorted(suites_dir.glob("*.json")):
        suite = parse_suite(path)
        if suite.asset_key not in asset_columns:
            raise _error(
                path, "name", f"no asset {suite.asset_key!r} to gate (assets: {', '.join(sorted(asset_columns))})"
            )
        check_columns(suite, asset_columns[suite.asset_key], suite.asset_key)
        suites[suite.asset_key] = suite
    return suites
