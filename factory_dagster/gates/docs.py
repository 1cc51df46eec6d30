"""GX Data Docs for humans: every suite and the latest result of every gate, as static HTML.

Results come from the gate history under the factory home (whichever engine produced them);
nothing is re-validated when the docs are built.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from factory_dagster.gates import history
from factory_dagster.gates.gate import Gate
from factory_dagster.storage.home import FactoryHome, asset_slug

SITE = "local_site"


def _context(root: Path) -> Any:
    import great_expectations as gx

    context = gx.get_context(mode="file", context_root_dir=root)
    site: Any = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": "docs/"},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    if SITE in context.list_data_docs_sites():
        context.update_data_docs_site(SITE, site)
    else:
        context.add_data_docs_site(SITE, site)
    return context


def _result_fields(outcome: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "observed_value": outcome.get("observed"),
        "element_count": outcome.get("element_count"),
        "missing_count": outcome.get("missing_count"),
        "unexpected_count": outcome.get("unexpected_count"),
        "unexpected_percent": outcome.get("unexpected_percent"),
        "partial_unexpected_list": outcome.get("examples") or None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def build_docs(home: FactoryHome, gates: list[Gate]) -> Path:
    """Write the docs site under `<home>/gx/docs/` and return its index.html."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core import (
        ExpectationSuiteValidationResult,
        ExpectationValidationResult,
        RunIdentifier,
    )
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    root = home.root / "gx"
    # The site shows the latest result of each gate: drop results stored by earlier builds.
    for stale in (root / "uncommitted" / "validations", root / "docs" / "validations"):
        shutil.rmtree(stale, ignore_errors=True)
    context = _context(root)
    for gate in gates:
        document = {k: v for k, v in gate.suite.document.items() if k in ("name", "expectations", "meta", "notes")}
        suite = context.suites.add_or_update(gx.ExpectationSuite(**document))
        latest = history.latest(home, gate.asset)
        if latest is None:
            continue
        by_index = {o["expectation"]["index"]: o for o in latest["outcomes"]}
        results = []
        for index, expectation in enumerate(suite.expectations):
            outcome = by_index.get(index)
            if outcome is None:
                continue
            exception = (
                {"raised_exception": True, "exception_message": outcome["error"], "exception_traceback": None}
                if outcome.get("error")
                else None
            )
            results.append(
                ExpectationValidationResult(
                    success=bool(outcome["success"]) and not outcome.get("error"),
                    expectation_config=expectation.configuration,
                    result=_result_fields(outcome),
                    exception_info=exception,
                )
            )
        passed = sum(1 for r in results if r.success)
        result = ExpectationSuiteValidationResult(
            success=passed == len(results),
            results=results,
            suite_name=suite.name,
            statistics={
                "evaluated_expectations": len(results),
                "successful_expectations": passed,
                "unsuccessful_expectations": len(results) - passed,
                "success_percent": 100.0 * passed / len(results) if results else None,
            },
            meta={
                "active_batch_definition": {"datasource_name": "factory", "data_asset_name": gate.asset},
                "factory_run_id": latest["run_id"],
                "rows": latest["row_count"],
            },
        )
        recorded = Path(history.gate_dir(home, gate.asset) / "latest.json").stat().st_mtime
        run_id = RunIdentifier(run_name=latest["run_id"], run_time=dt.datetime.fromtimestamp(recorded, dt.UTC))
        result.meta["run_id"] = run_id
        key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=suite.name), run_id, asset_slug(gate.asset))
        context.validation_results_store.set(key, result)
    context.build_data_docs()
    return root / "docs" / "index.html"
