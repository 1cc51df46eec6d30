"""Product lines as units found by their name: lines/<line>/, dbt_project/models/<line>/,
expectations/<line>/ under one factory root, several lines in one code location."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.cli import main
from factory_dagster.cli.common import load
from factory_dagster.factory import build_definitions
from factory_dagster.products import load_factory, load_line
from factory_dagster.products.dbt_model import prepare_dbt_project
from factory_dagster.spec import SpecError
from factory_dagster.spec.errors import display_path
from tests.conftest import copy_line, line_args
from tests.synthetic import make_factory

LINE_TAG = "factory/line"
ALPHA = {"raw/events", "stg_events", "int_step_1", "fct_events", "event_features", "label_model", "label_scores"}
BETA = {
    f"raw/b_{name}" if name.startswith("events") else f"b_{name}"
    for name in ("events", "stg_events", "int_step_1", "fct_events", "event_features", "label_model", "label_scores")
}
REPORTS = {"technical_debt_report", "ml_test_score"}


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def two_lines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A factory root serving two synthetic lines, each with its models in the one dbt project
    (parsed once): `alpha` (automation on) and `beta` (names prefixed `b_`, its scores in a group
    of their own)."""
    root = tmp_path_factory.mktemp("two_lines")
    alpha = make_factory(root, line="alpha", dbt_steps=1)
    replace(alpha / "line.yaml", "enabled: false", "enabled: true")  # automation
    beta = make_factory(root, line="beta", prefix="b_", dbt_steps=1)
    replace(beta / "predictions.yaml", "    owner: team:synth\n", "    owner: team:synth\n    group: experiments\n")
    prepare_dbt_project(root / "dbt_project")
    return root


def test_two_lines_load_into_one_code_location(two_lines: Path, tmp_path: Path) -> None:
    defs = build_definitions(root=two_lines, home=tmp_path / "home")  # factory.yaml serves both
    graph = defs.resolve_asset_graph()
    by_line: dict[str, set[str]] = {}
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        name = key.to_user_string()
        if name in REPORTS:
            assert node.group_name == "governance" and LINE_TAG not in node.tags
            continue
        by_line.setdefault(node.tags[LINE_TAG], set()).add(name)
        # Every asset of a line is in the line's group (dbt's from dbt_project.yml), unless it declares one.
        assert node.group_name == ("experiments" if name == "b_label_scores" else node.tags[LINE_TAG]), name
    assert by_line == {"alpha": ALPHA, "beta": BETA}
    assert {graph.get(k).group_name for k in graph.materializable_asset_keys} == {
        "alpha",
        "beta",
        "experiments",
        "governance",
    }
    assert graph.get(dg.AssetKey("b_stg_events")).parent_keys == {dg.AssetKey(["raw", "b_events"])}
    for line, model in (("alpha", "stg_events"), ("beta", "b_stg_events")):  # each line runs its own models
        (dbt,) = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and dg.AssetKey(model) in a.keys]
        assert dbt.op.name == f"{line}_dbt_models"
        assert {k.to_user_string() for k in dbt.keys} == {
            n
            for n in (ALPHA if line == "alpha" else BETA)
            if ("events" in n and not n.startswith("raw/")) or "int_step" in n
        }
    repo = defs.get_repository_def()
    automation = [s for s in repo.sensor_defs if s.name.endswith("_automation")]
    assert [s.name for s in automation] == ["alpha_automation"]  # beta's automation is off
    selected = automation[0].asset_selection.resolve(graph)
    assert {k.to_user_string() for k in selected} == ALPHA


@pytest.fixture
def definitions_module(two_lines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    from factory_dagster import definitions

    monkeypatch.setenv("FACTORY_ROOT", str(two_lines))
    monkeypatch.setenv("FACTORY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FACTORY_LINES", raising=False)
    definitions._build.cache_clear()  # each definition is built once per process: not across roots
    yield definitions
    definitions._build.cache_clear()


def test_the_code_location_serves_every_line_or_one(definitions_module) -> None:
    def keys(defs: dg.Definitions) -> set[str]:
        return {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}

    assert keys(definitions_module.line_alpha) == ALPHA | REPORTS
    assert keys(definitions_module.line_beta) == BETA | REPORTS
    assert keys(definitions_module.defs) == ALPHA | BETA | REPORTS
    assert definitions_module.defs is definitions_module.defs  # built once
    with pytest.raises(AttributeError):
        definitions_module.something_else  # noqa: B018


@pytest.mark.parametrize("factory", ["two synthetic lines", "flights"])
def test_loading_definitions_changes_no_environment_and_writes_no_file(
    factory: str, request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FACTORY_HOME", "DAGSTER_HOME", "FACTORY_ROOT", "FACTORY_LINES"):
        monkeypatch.delenv(name, raising=False)
    if factory == "flights":  # its dbt_project links to the repository's (not listed)
        root, lines = copy_line(tmp_path / "factory").parent.parent, ["flights"]
    else:
        root, lines = request.getfixturevalue("two_lines"), ["alpha", "beta"]
    home = tmp_path / "home"
    home.mkdir()

    def listing() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for folder in (root, home)
            for p in sorted(folder.rglob("*"))
        }

    environment, files = dict(os.environ), listing()
    defs = build_definitions(lines, root=root, home=home)
    defs.resolve_asset_graph()
    defs.get_repository_def()
    assert dict(os.environ) == environment
    assert listing() == files


@pytest.mark.e2e  # runs dbt compile three times
def test_commands_compile_the_dbt_project_only_when_it_changed(
    two_lines: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    shutil.copytree(two_lines, root, symlinks=True)  # copies keep their times: the manifest is current
    monkeypatch.setenv("FACTORY_ROOT", str(root))
    monkeypatch.setenv("FACTORY_HOME", str(tmp_path / "home"))
    manifest = root / "dbt_project" / "target" / "manifest.json"
    args = argparse.Namespace(lines=["alpha"])
    before = manifest.stat().st_mtime_ns
    load(args, prepare=True)  # what `factory build` does first: the manifest is current
    assert manifest.stat().st_mtime_ns == before
    model = root / "dbt_project" / "models" / "alpha" / "staging" / "stg_events.sql"
    model.touch()  # edited after the manifest
    loaded = load(args, prepare=True)  # compiled again, and the line loads
    assert manifest.stat().st_mtime_ns >= model.stat().st_mtime_ns > before
    assert set(loaded.specs[0].dbt_models) == {"stg_events", "int_step_1", "fct_events"}
    current = manifest.stat().st_mtime_ns
    load(args, prepare=True, force=True)  # `factory prepare` always compiles
    assert manifest.stat().st_mtime_ns > current
    extra = root / "dbt_project" / "models" / "alpha" / "marts" / "extra_events.sql"
    extra.write_text("select id from {{ ref('fct_events') }}\n")
    assert "extra_events" in load(args, prepare=True).specs[0].dbt_models  # a new model
    extra.unlink()  # a deleted model: its folder changed after the manifest
    assert "extra_events" not in load(args, prepare=True).specs[0].dbt_models


def test_a_stale_or_missing_manifest_says_run_factory_prepare(
    two_lines: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    shutil.copytree(two_lines, root, symlinks=True)  # copies keep their times: the manifest is current
    assert set(load_line(root / "lines" / "alpha").dbt_models) == {"stg_events", "int_step_1", "fct_events"}
    manifest = root / "dbt_project" / "target" / "manifest.json"
    model = root / "dbt_project" / "models" / "alpha" / "staging" / "stg_events.sql"
    written = manifest.stat().st_mtime
    os.utime(model, (written + 10, written + 10))  # edited after the last `factory prepare`
    stale = (
        f"{display_path(manifest)}: dbt manifest is older than models/alpha/staging/stg_events.sql: "
        "run 'factory prepare' (dbt compile)"
    )
    for line in ("alpha", "beta"):  # one dbt project: every line sees it stale
        with pytest.raises(SpecError) as caught:
            load_line(line, root)
        assert str(caught.value) == stale
    with pytest.raises(SpecError) as caught:
        build_definitions(root=root, home=tmp_path / "home")
    assert str(caught.value).splitlines()[0] == stale
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--root", str(root), "--line", "alpha", "--home", str(tmp_path / "home")])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {stale}"
    manifest.unlink()
    with pytest.raises(SpecError) as caught:
        load_line(root / "lines" / "alpha")
    assert str(caught.value) == f"{display_path(manifest)}: dbt manifest missing: run 'factory prepare' (dbt compile)"


def test_a_line_is_named_by_its_folder(line_dir: Path) -> None:
    line_yaml = line_dir / "line.yaml"
    replace(line_yaml, "line:\n", "line:\n  name: flights\n")
    with pytest.raises(SpecError) as caught:
        load_line(line_dir)
    number = line_yaml.read_text().splitlines().index("  name: flights") + 1
    assert str(caught.value) == (
        f"{display_path(line_yaml)}: line.name: a line is named by its folder (lines/flights/): remove 'name' "
        f"(line {number})"
    )


def test_a_line_is_found_by_name_or_folder(line_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = line_dir.parent.parent
    by_folder = load_line(line_dir)
    assert by_folder.name == "flights" and by_folder.root.path == root.resolve()
    assert by_folder.spec_dir == line_dir.resolve()
    assert by_folder.suites_dir == root.resolve() / "expectations" / "flights"
    assert by_folder.dbt_project_dir == root.resolve() / "dbt_project"
    assert load_line("flights", root).describe() == by_folder.describe()
    monkeypatch.setenv("FACTORY_ROOT", str(root))
    assert load_line("flights").describe() == by_folder.describe()
    elsewhere = tmp_path / "specs"
    shutil.copytree(line_dir, elsewhere)
    with pytest.raises(SpecError) as caught:
        load_line(elsewhere)
    assert str(caught.value) == f"{display_path(elsewhere)}: a line's folder lives at <factory root>/lines/<name>/"
    with pytest.raises(SpecError) as caught:
        load_line("trains", root)
    assert str(caught.value) == (
        f"{display_path(root.resolve() / 'lines' / 'trains')}: line 'trains' not found (lines: flights)"
    )


def test_an_unknown_line_name_is_one_line_naming_the_known_lines(
    line_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = line_dir.parent.parent
    known = f"unknown line 'nope' (lines under {root.resolve() / 'lines'}: flights)"
    with pytest.raises(SpecError) as caught:
        load_factory(root, ["flights", "nope"])
    assert str(caught.value) == f"--line: {known}"
    with pytest.raises(SystemExit) as exited:
        main(["validate", "--root", str(root), "--line", "nope", "--home", str(tmp_path / "home")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and err.endswith(f": {known}") and "\n" not in err
    monkeypatch.setenv("FACTORY_LINES", "flights,nope")
    with pytest.raises(SpecError) as caught:
        load_factory(root)
    assert str(caught.value) == f"FACTORY_LINES: {known}"
    monkeypatch.delenv("FACTORY_LINES")
    config = root / "factory.yaml"
    config.write_text("# the lines served\nlines:\n  - flights\n  - nope\n")
    with pytest.raises(SpecError) as caught:
        load_factory(root)
    assert str(caught.value) == f"{display_path(config.resolve())}: lines[1]: {known} (line 4)"


def test_the_served_lines_come_from_the_option_the_environment_or_factory_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_factory(tmp_path, line="alpha")
    make_factory(tmp_path, line="beta", prefix="b_")
    monkeypatch.delenv("FACTORY_LINES", raising=False)
    assert [s.name for s in load_factory(tmp_path)] == ["alpha", "beta"]  # factory.yaml
    (tmp_path / "factory.yaml").write_text("lines: [beta]\n")
    assert [s.name for s in load_factory(tmp_path)] == ["beta"]
    (tmp_path / "factory.yaml").unlink()
    assert [s.name for s in load_factory(tmp_path)] == ["alpha", "beta"]  # every folder under lines/
    monkeypatch.setenv("FACTORY_LINES", "beta")
    assert [s.name for s in load_factory(tmp_path)] == ["beta"]
    assert [s.name for s in load_factory(tmp_path, ["alpha"])] == ["alpha"]


@pytest.mark.parametrize(
    ("section", "file", "asset"),
    [
        ("sources", "sources.yaml", "raw/events"),
        ("feature_sets", "feature_sets.yaml", "event_features"),
    ],
    ids=["source", "feature set"],
)
def test_names_are_unique_across_lines(tmp_path: Path, section: str, file: str, asset: str) -> None:
    alpha = make_factory(tmp_path, line="alpha")
    beta = make_factory(tmp_path, line="beta", prefix="b_")
    assert [s.name for s in load_factory(tmp_path)] == ["alpha", "beta"]
    # beta declares, beside its own, an entry named as one of alpha's
    text = (alpha / file).read_text().replace("source: events", "source: b_events")
    (beta / "more.yaml").write_text(text)
    name = asset.removeprefix("raw/")
    with pytest.raises(SpecError) as caught:
        load_factory(tmp_path)
    assert str(caught.value) == (
        f"{display_path(beta / 'more.yaml')}: {section}.{name}: asset '{asset}' is already declared by line 'alpha' "
        f"({display_path(alpha / file)}, line 2): asset names are unique across the factory's lines (line 2)"
    )
    with pytest.raises(SpecError) as caught:
        build_definitions(root=tmp_path, home=tmp_path / "home")
    assert str(caught.value).startswith(f"{display_path(beta / 'more.yaml')}: {section}.{name}: ")


@pytest.mark.e2e
def test_factory_build_and_debt_run_each_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, home = tmp_path / "root", tmp_path / "home"
    make_factory(root, line="alpha")
    make_factory(root, line="beta", prefix="b_", seed=False)  # a model without seed: a TD20 finding
    assert main(["build", "--no-prepare", "--root", str(root), "--home", str(home)]) == 0
    out = capsys.readouterr().out
    runs = [line for line in out.splitlines() if line.startswith("Building ")]
    assert [run.split(" of ", 1)[1].split(" into ")[0] for run in runs] == ["line alpha", "line beta"]  # a run each
    assert (home / "predictions" / "label_scores").is_dir() and (home / "predictions" / "b_label_scores").is_dir()
    code = main(["debt", "--format", "json", "--root", str(root), "--home", str(home), "--fail-on", "medium"])
    lines = json.loads(capsys.readouterr().out)["lines"]
    assert code == 1
    assert list(lines) == ["alpha", "beta"]
    assert lines["alpha"]["debt"]["findings"] == []
    assert [(f["rule"], f["assets"][0]) for f in lines["beta"]["debt"]["findings"]] == [("TD20", "b_label_model")]
    for line in ("alpha", "beta"):  # a report per line
        assert json.loads((home / "reports" / line / "debt.json").read_text()) == lines[line]
        assert "<svg" in (home / "reports" / line / "debt.html").read_text()
    assert main(["debt", *line_args(root / "lines" / "alpha"), "--home", str(home), "--fail-on", "medium"]) == 0
