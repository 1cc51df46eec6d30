"""`factory gates`: every quality gate with its asset, suite, severity mix and last result."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import dagster as dg
from rich.markup import escape
from rich.table import Table

from factory_dagster.cli.common import console, errors, load
from factory_dagster.execution.instance import factory_instance
from factory_dagster.factory import build_gates
from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.spec.errors import display_path


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("gates", help="list quality gates and their last results")
    parser.add_argument("--docs", action="store_true", help="build GX Data Docs (HTML) into the factory home")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def _last_results(instance: dg.DagsterInstance, keys: list[dg.AssetKey]) -> dict[str, dict[str, object]]:
    check_keys = [dg.AssetCheckKey(key, GATE_CHECK) for key in keys]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys)
    results: dict[str, dict[str, object]] = {}
    for check_key, record in records.items():
        evaluation = record.evaluation if isinstance(record.evaluation, dg.AssetCheckEvaluation) else None
        status = record.status.value
        if evaluation is not None:
            status = "PASSED" if evaluation.passed else f"FAILED ({evaluation.severity.value})"
        results[check_key.asset_key.to_user_string()] = {
            "status": status,
            "run_id": record.run_id,
            "at": dt.datetime.fromtimestamp(record.create_timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "failed": list(getattr(evaluation.metadata.get("failed_expectations"), "value", None) or [])
            if evaluation is not None
            else [],
        }
    return results


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    gates = {key: gate for spec in loaded.specs for key, gate in build_gates(spec).items()}
    instance = factory_instance(loaded.home)
    last = _last_results(instance, [gate.asset_key for gate in gates.values()])
    rows = []
    for key, gate in sorted(gates.items()):
        mix = gate.suite.severity_mix()
        result = last.get(key, {"status": "never run"})
        rows.append(
            {
                "asset": key,
                "suite": display_path(gate.suite.path),
                "expectations": len(gate.suite.expectations),
                **{f"{k}": v for k, v in mix.items()},
                "engine": gate.engine,
                "last_result": result,
            }
        )
    if args.docs:
        from factory_dagster.gates.docs import build_docs

        index = build_docs(loaded.home, list(gates.values()))
        errors.print(f"GX Data Docs: {index}", markup=False)
    if args.format == "json":
        console.print_json(json.dumps({"gates": rows}))
        return 0
    table = Table(title=f"Quality gates of line {', '.join(s.name for s in loaded.specs)}", title_justify="left")
    for column in ("asset", "suite", "critical / warning / info", "engine", "last result"):
        table.add_column(column, overflow="fold")
    for row in rows:
        result = row["last_result"]
        status = str(result["status"])
        colour = "green" if status == "PASSED" else "red" if "ERROR" in status else "yellow"
        text = f"[{colour}]{status}[/]" + (f" at {result['at']}" if "at" in result else "")
        for failed in result.get("failed") or []:
            text += f"\n  {escape(str(failed))}"
        table.add_row(
            escape(row["asset"]),
            escape(row["suite"]),
            f"{row['critical']} / {row['warning']} / {row['info']}",
            row["engine"],
            text,
        )
    console.print(table)
    return 0
