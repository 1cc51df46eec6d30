"""Debt rules on synthetic factories: each finds its planted debt and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from factory_dagster.cli import main
from factory_dagster.execution.runner import execute, resolve_selection
from factory_dagster.factory import build_definitions, build_gates
from factory_dagster.lineage.assess import Assessment, assess
from factory_dagster.lineage.ml_test_score import BANDS, SECTIONS, band
from factory_dagster.lineage.rules import all_rules
from factory_dagster.products import load_line
from factory_dagster.products.dbt_model import prepare_dbt_project
from factory_dagster.spec import SpecError
from factory_dagster.spec.errors import display_path
from tests.conftest import line_args
from tests.synthetic import make_factory


def build_and_assess(
    specs: Path,
    home: Path,
    skip: frozenset[str] = frozenset(),
    materialize: bool = True,
    instance: dg.DagsterInstance | None = None,
) -> Assessment:
    """Build the factory (unless `materialize` is false: structure only, no history) and assess it."""
    project = specs.parent.parent / "dbt_project"
    if (project / "dbt_project.yml").is_file():
        prepare_dbt_project(project)
    spec = load_line(specs)
    defs = build_definitions(specs=[spec], home=home)
    suites = {k: g.suite for k, g in build_gates(spec).items()}
    if not materialize:
        return assess(spec, defs, None, suites)
    instance = instance or dg.DagsterInstance.ephemeral()
    keys = [k for k in resolve_selection(defs, None) if k.to_user_string() not in skip]
    report = execute(defs, instance, keys, log_dir=home / "logs")
    assert report.success, report.failures
    return assess(spec, defs, instance, suites)


def found(result: Assessment) -> set[tuple[str, str]]:
    return {(f.rule, f.assets[0]) for f in result.debt.findings}


@pytest.mark.e2e
@pytest.mark.parametrize("dbt_steps", [0, 2], ids=["no dbt", "dbt"])
def test_a_clean_factory_reports_no_finding(tmp_path: Path, dbt_steps: int) -> None:
    result = build_and_assess(make_factory(tmp_path, dbt_steps=dbt_steps), tmp_path / "home")
    assert result.debt.findings == [], [f.evidence for f in result.debt.findings]
    assert result.debt.score == 0


# plant: (factory options, assets left unbuilt, expected (rule, subject) findings, needs a build)
# The dbt plants are structural (depth, ownership): their graph says it all, no run needed.
PLANTS = {
    "unused feature set": ({"spare_feature_set": True}, frozenset(), {("TD05", "spare_features")}),
    "unused feature column": ({"explicit_features": True}, frozenset(), {("TD05F", "event_features")}),
    "ungated input": (
        {"gate_source": False},
        frozenset(),
        {("TD19", "raw/events"), ("TD19K", "raw/events"), ("TD19M", "label_model")},
    ),
    "model without seed": ({"seed": False}, frozenset(), {("TD20", "label_model")}),
    "prediction feeding a model": ({"stacked_model": True}, frozenset(), {("TD02", "stacked_model")}),
    "never-materialized asset": (
        {"untrained_model": True},
        frozenset({"label_model_v2"}),
        {("TD13", "label_model_v2")},
    ),
    "deep chain": ({"dbt_steps": 8}, None, {("TD12", "int_step_8")}),
    "missing owner": ({"dbt_steps": 2, "unowned_model": "int_step_1"}, None, {("TD21", "int_step_1")}),
}


@pytest.mark.e2e  # each plant builds its factory, or parses its generated dbt project with dbt
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_each_rule_finds_its_plant_and_nothing_else(plant: str, tmp_path: Path) -> None:
    options, skip, expected = PLANTS[plant]
    result = build_and_assess(
        make_factory(tmp_path, **options), tmp_path / "home", skip or frozenset(), materialize=skip is not None
    )
    assert found(result) == expected, [f"{f.rule} {f.evidence}" for f in result.debt.findings]
    for finding in result.debt.findings:
        assert finding.evidence and finding.fix and finding.name == all_rules()[finding.rule].name


@pytest.mark.e2e
def test_findings_name_columns_and_evidence(tmp_path: Path) -> None:
    result = build_and_assess(make_factory(tmp_path, explicit_features=True), tmp_path / "home")
    (finding,) = result.debt.findings
    assert finding.columns == ["amount_ratio"]
    assert finding.evidence == "event_features builds amount_ratio, which no model uses"
    assert finding.severity == "medium"


@pytest.mark.e2e
def test_exceptions_accept_findings_with_a_reason(tmp_path: Path) -> None:
    specs = make_factory(tmp_path, seed=False)
    (specs / "debt.yaml").write_text(
        yaml.safe_dump(
            {
                "debt": {
                    "exceptions": [
                        {"rule": "TD20", "assets": "label_*", "reason": "A research model: runs differ on purpose."}
                    ]
                }
            }
        )
    )
    result = build_and_assess(specs, tmp_path / "home")
    assert result.debt.findings == []
    (accepted,) = result.debt.excepted
    assert (accepted.rule, accepted.excepted_by) == ("TD20", "A research model: runs differ on purpose.")


def test_an_exception_needs_a_reason_and_a_known_rule(tmp_path: Path) -> None:
    specs = make_factory(tmp_path)
    debt = specs / "debt.yaml"
    debt.write_text(yaml.safe_dump({"debt": {"exceptions": [{"rule": "TD20", "assets": "label_*"}]}}))
    with pytest.raises(SpecError) as caught:
        load_line(specs)
    assert str(caught.value) == f"{display_path(debt)}: debt.exceptions[0]: missing required field 'reason' (line 3)"
    debt.write_text(
        yaml.safe_dump(
            {
                "debt": {
                    "exceptions": [
                        {"rule": "TD20", "assets": "*", "reason": "x"},
                        {"rule": "TD99", "assets": "*", "reason": "x"},
                    ]
                }
            }
        )
    )
    with pytest.raises(SpecError) as caught:  # at load, not only when `factory debt` evaluates
        load_line(specs)
    assert str(caught.value) == (
        f"{display_path(debt)}: debt.exceptions[1].rule: unknown rule 'TD99' "
        f"(rules: {', '.join(sorted(all_rules()))}) (line {debt.read_text().splitlines().index('    rule: TD99') + 1})"
    )


@pytest.mark.e2e
def test_ml_test_score_shows_evidence_per_test(tmp_path: Path) -> None:
    result = build_and_assess(make_factory(tmp_path), tmp_path / "home")
    (score,) = result.scores
    assert len(score.tests) == 28
    assert {t.section for t in score.tests} == set(SECTIONS)
    assert [sum(1 for t in score.tests if t.section == s) for s in SECTIONS] == [7, 7, 7, 7]
    assert all(t.score in (0, 0.5, 1) and t.evidence for t in score.tests)
    assert score.score == min(score.section(s) for s in SECTIONS)
    assert score.band == band(score.score)
    by_id = {t.id: t for t in score.tests}
    # The synthetic model declares no promotion rule, so by default it must beat the Dummy on its first metric.
    assert by_id["M5"].score == 1
    assert by_id["M5"].evidence.startswith("promotion requires beating the Dummy baseline on roc_auc; last: roc_auc ")
    assert by_id["D1"].score == 1 and by_id["I4"].score == 1 and by_id["Mon4"].score == 1
    assert by_id["M2"].score == 0  # needs online data


def test_bands_follow_the_2017_paper() -> None:
    assert [band(s) for s in (0, 0.5, 1, 1.5, 2.5, 4, 6)] == [
        "research project",
        "serious holes in reliability possible",
        "serious holes in reliability possible",
        "first productionization pass",
        "reasonably tested",
        "strong levels of automated testing and monitoring",
        "exceptional",
    ]
    assert len(BANDS) == 6


@pytest.mark.e2e
def test_factory_debt_cli_gates_ci(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from factory_dagster.execution.instance import factory_instance
    from factory_dagster.storage.home import FactoryHome

    specs = make_factory(tmp_path, seed=False)
    home = tmp_path / "home"
    build_and_assess(specs, home, instance=factory_instance(FactoryHome(home)))  # the home's own instance
    code = main(["debt", "--format", "json", *line_args(specs), "--home", str(home), "--fail-on", "medium"])
    output = json.loads(capsys.readouterr().out)
    assert code == 1
    assert list(output["lines"]) == ["synth"]
    line = output["lines"]["synth"]
    assert [(f["rule"], f["severity"]) for f in line["debt"]["findings"]] == [("TD20", "medium")]
    assert line["ml_test_score"][0]["model"] == "label_model"
    assert json.loads((home / "reports" / "synth" / "debt.json").read_text()) == line
    assert main(["debt", *line_args(specs), "--home", str(home), "--fail-on", "high"]) == 0
    assert (home / "reports" / "synth" / "debt.html").read_text().count("<svg") == 1


@pytest.mark.e2e  # dbt compiles the generated project
def test_documentation_drift_is_found_and_nothing_else(tmp_path: Path) -> None:
    """TD21D: int_step_1 documents v_one while its SQL produces v_1 (nothing reads either)."""
    specs = make_factory(tmp_path, dbt_steps=2)
    docs = tmp_path / "dbt_project" / "models" / "synth" / "intermediate" / "_int_step_1.yml"
    docs.write_text(docs.read_text().replace('"v_1"', '"v_one"'))
    result = build_and_assess(specs, tmp_path / "home", materialize=False)
    assert found(result) == {("TD21D", "int_step_1")}, [f"{f.rule} {f.evidence}" for f in result.debt.findings]
    (finding,) = result.debt.findings
    assert finding.columns == ["v_1", "v_one"]
    assert finding.evidence.startswith(
        "dbt model int_step_1: documents v_one, which its SQL does not produce; produces v_1, which is not documented: "
        "documented [id, day, grp, value, amount, label, v_one], its SQL produces [id, day, grp, value, amount, label, v_1]"
    )


def test_glue_code_rule_skips_columns_computed_from_nothing() -> None:
    """TD11 on a model whose column has no upstream column (a literal, count(*)): no finding, no crash;
    the same model passing its one parent's column through is glue."""
    from factory_dagster.lineage.graph import AssetNode, FactoryGraph
    from factory_dagster.spec.debt import DebtThresholds

    def node(key: str, layer: str, parents: set[str], lineage: dict[str, list[tuple[str, str]]]) -> AssetNode:
        return AssetNode(
            key, "data_product", None, [], "", set(), {}, None, parents=parents, columns=list(lineage), layer=layer,
            column_lineage=lineage,
        )  # fmt: skip

    def glue(lineage: dict[str, list[tuple[str, str]]]) -> list[str]:
        nodes = {"stg_x": node("stg_x", "staging", set(), {}), "fct_y": node("fct_y", "marts", {"stg_x"}, lineage)}
        graph = FactoryGraph(spec=None, nodes=nodes, exposures={}, now=0.0)  # type: ignore[arg-type]
        return [f.evidence for f in all_rules()["TD11"].check(graph, None, DebtThresholds())]  # type: ignore[arg-type]

    assert glue({"a": [("stg_x", "a")], "rows": []}) == []
    assert glue({"a": [("stg_x", "a")]}) == ["every column of fct_y is one column of stg_x"]
