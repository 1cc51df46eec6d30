"""Debt on the asset graph: every asset's `technical_debt` check and every model's `ml_test_score`
check agree with the debt engine's report, and never block a build."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.execution.runner import execute, resolve_selection
from factory_dagster.factory import build_definitions, build_gates
from factory_dagster.lineage.assess import assess
from factory_dagster.lineage.checks import DEBT_CHECK, SCORE_CHECK
from factory_dagster.products import load_line
from tests.synthetic import make_factory

SEVERITY = {"high": "ERROR", "medium": "WARN", "low": "WARN"}


def indebted(tmp_path: Path) -> tuple[Path, dg.Definitions]:
    """A synthetic line with an ungated source and an unseeded model (debt TD19*, TD20)."""
    specs = make_factory(tmp_path / "factory", gate_source=False, seed=False)
    return specs, build_definitions(specs=[load_line(specs)], home=tmp_path / "home")


def test_every_asset_has_a_non_blocking_debt_check(tmp_path: Path) -> None:
    specs, defs = indebted(tmp_path)
    spec = load_line(specs)
    graph = defs.resolve_asset_graph()
    line = {k for k in resolve_selection(defs, None)}
    checks = {k: graph.get(k) for k in graph.asset_check_keys if k.name in (DEBT_CHECK, SCORE_CHECK)}
    assert {k.asset_key for k in checks if k.name == DEBT_CHECK} == line
    assert {k.asset_key.to_user_string() for k in checks if k.name == SCORE_CHECK} == set(spec.models)
    assert not any(node.blocking for node in checks.values())


def test_the_governance_report_evaluates_each_assets_debt_check(tmp_path: Path) -> None:
    specs, defs = indebted(tmp_path)
    spec = load_line(specs)
    instance = dg.DagsterInstance.ephemeral()
    report = execute(defs, instance, [dg.AssetKey("technical_debt_report")], log_dir=tmp_path / "logs")
    assert report.success, report.failures
    oracle = assess(spec, defs, instance, {k: g.suite for k, g in build_gates(spec).items()}).debt
    evaluated = {c.asset: c for c in report.checks if c.name == DEBT_CHECK}
    assert set(evaluated) == {k.to_user_string() for k in resolve_selection(defs, None)}
    assert {"raw/events", "label_model"} <= {a for f in oracle.findings for a in f.assets}
    for asset, check in evaluated.items():
        findings = [f for f in oracle.findings if asset in f.assets]
        assert check.passed == (not findings), asset
        assert check.metadata["findings_json"] == [f.to_json() for f in findings]
        if findings:
            worst = "ERROR" if any(f.severity == "high" for f in findings) else "WARN"
            assert check.severity == worst
            assert all(f.rule in (check.description or "") and f.fix in check.metadata["findings"] for f in findings)


@pytest.mark.e2e  # builds the synthetic line
def test_debt_checks_run_after_their_asset_and_never_block(tmp_path: Path) -> None:
    specs, defs = indebted(tmp_path)
    spec = load_line(specs)
    instance = dg.DagsterInstance.ephemeral()
    report = execute(defs, instance, resolve_selection(defs, None), log_dir=tmp_path / "logs")
    assert report.success, report.failures  # failed debt checks, and every asset built
    assert report.not_built() == []
    failed = {c.asset: c.severity for c in report.failed_checks() if c.name == DEBT_CHECK}
    oracle = assess(spec, defs, instance, {k: g.suite for k, g in build_gates(spec).items()}).debt
    expected: dict[str, str] = {}
    for finding in oracle.findings:
        for asset in finding.assets:
            if expected.get(asset) != "ERROR":
                expected[asset] = SEVERITY[finding.severity]
    assert failed == expected
    (score,) = [c for c in report.checks if c.name == SCORE_CHECK]
    assert score.asset == "label_model" and (score.description or "").startswith("ML Test Score ")
