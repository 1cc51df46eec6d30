"""dbt models' real columns: what their compiled SQL produces, checked against what they document.

The case of dbt-labs' jaffle_shop_duckdb, rebuilt in a synthetic project: `customers` documents
`total_order_amount` while its SQL produces `customer_lifetime_value`. DuckDB itself, running the
compiled SQL over empty tables shaped like the sources, is the oracle of the produced columns.
"""

from __future__ import annotations

import csv
import json
import shutil
import textwrap
from collections import defaultdict
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from factory_dagster.cli import main
from factory_dagster.products import dbt_model, load_line
from factory_dagster.products.dbt_model import prepare_dbt_project
from factory_dagster.spec import SpecError
from factory_dagster.spec.dbt_manifest import dbt_models, load_manifest, models_path
from factory_dagster.spec.errors import display_path
from tests.synthetic import make_factory

CUSTOMERS_SQL = """\
with events as (
    select * from {{ ref('fct_events') }}
),
per_group as (
    select grp as customer_id, min(day) as first_event_day, sum(amount) as customer_lifetime_value
    from events
    group by grp
)
select * from per_group
"""
CUSTOMERS_DOCS = """\
version: 2
models:
  - name: customers
    description: One row per customer (here, per event group).
    columns:
      - name: customer_id
        description: The customer.
        data_tests: [unique, not_null]
      - name: first_event_day
        description: The day of the customer's first event.
      - name: total_order_amount
        description: Total value of the customer's orders.
"""
DOCUMENTED = ["customer_id", "first_event_day", "total_order_amount"]
PRODUCED = ["customer_id", "first_event_day", "customer_lifetime_value"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic line (stg_events → int_step_1 → fct_events) with the drifted `customers` mart,
    a model reading an undeclared relation and one reading a dbt source that declares its
    columns; compiled once by `prepare_dbt_project`."""
    root = tmp_path_factory.mktemp("shop")
    make_factory(root, dbt_steps=1)
    marts = root / "dbt_project" / "models" / "synth" / "marts"
    (marts / "customers.sql").write_text(CUSTOMERS_SQL)
    (marts / "_customers.yml").write_text(CUSTOMERS_DOCS)
    staging = root / "dbt_project" / "models" / "synth" / "staging"
    (staging / "_more_sources.yml").write_text(
        textwrap.dedent("""\
        version: 2
        sources:
          - name: outside
            schema: outside
            tables:
              - name: undeclared
              - name: declared
                columns: [{name: code}, {name: label}]
        """)
    )
    (staging / "stg_undeclared.sql").write_text("select * from {{ source('outside', 'undeclared') }}\n")
    (staging / "_stg_undeclared.yml").write_text(
        "version: 2\nmodels:\n  - name: stg_undeclared\n    columns: [{name: a}, {name: b}]\n"
    )
    (staging / "stg_declared.sql").write_text(
        "select d.*, upper(label) as shout from {{ source('outside', 'declared') }} as d\n"
    )
    prepare_dbt_project(root / "dbt_project")
    return root


@pytest.fixture
def factory(shop: Path, tmp_path: Path) -> Path:
    """A copy of the compiled shop to edit (the manifest keeps its mtime, so it stays current)."""
    shutil.copytree(shop, tmp_path / "shop", symlinks=True)
    return tmp_path / "shop"


def duckdb_columns(root: Path) -> dict[str, list[str]]:
    """The oracle: every model's columns as DuckDB reports them, running the compiled SQL (as
    views, upstream first) over empty tables shaped like the landed source."""
    manifest = load_manifest(root / "dbt_project")
    spec = yaml.safe_load((root / "lines" / "synth" / "sources.yaml").read_text())["sources"]["events"]
    types = {"int": "bigint", "date": "date", "string": "varchar", "float": "double"}
    connection = duckdb.connect(str(root / "oracle" / "warehouse.duckdb"))
    connection.execute("create schema raw")
    connection.execute(f"create table raw.events ({', '.join(f'{c} {types[t]}' for c, t in spec['columns'].items())})")
    done: dict[str, list[str]] = {}
    for name in ("stg_events", "int_step_1", "fct_events", "customers"):
        (node,) = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and n["name"] == name]
        connection.execute(f'create view "main"."{name}" as {node["compiled_code"]}')
        done[name] = [row[0] for row in connection.execute(f'describe "main"."{name}"').fetchall()]
    connection.close()
    return done


def test_produced_columns_are_those_duckdb_gets_from_the_compiled_sql(shop: Path) -> None:
    (shop / "oracle").mkdir()
    spec = load_line(shop / "lines" / "synth")
    for name, columns in duckdb_columns(shop).items():
        assert list(spec.dbt_models[name].produced or ()) == columns, name
    assert list(spec.dbt_models["customers"].produced or ()) == PRODUCED
    assert list(spec.dbt_models["customers"].columns) == DOCUMENTED
    # `select *` from a source resolves through the landed source's declared columns
    assert list(spec.dbt_models["stg_events"].produced or ()) == ["id", "day", "grp", "value", "amount", "label"]


def test_columns_are_the_produced_ones_else_the_documented_ones(shop: Path) -> None:
    spec = load_line(shop / "lines" / "synth")
    assert list(dbt_model.KIND.columns(spec, "customers") or {}) == PRODUCED
    # a dbt source declaring its columns resolves `d.*`
    assert list(dbt_model.KIND.columns(spec, "stg_declared") or {}) == ["code", "label", "shout"]
    # nothing declares the columns behind `select *`: the documented columns stand in
    assert spec.dbt_models["stg_undeclared"].produced is None
    assert list(dbt_model.KIND.columns(spec, "stg_undeclared") or {}) == ["a", "b"]
    assert spec.dbt_models["stg_undeclared"].drift(shop / "dbt_project") is None


def test_a_manifest_without_compiled_sql_falls_back_to_the_documented_columns(shop: Path) -> None:
    manifest = json.loads((shop / "dbt_project" / "target" / "manifest.json").read_text())
    for node in manifest["nodes"].values():
        node.pop("compiled_code", None)  # what `dbt parse` alone writes
    models = dbt_models(manifest, models_path("synth"), {"raw/events": ["id", "day"]})
    assert models["customers"].produced is None
    assert list(models["customers"].columns) == DOCUMENTED
    assert models["customers"].drift(shop / "dbt_project") is None


def add_lookup(root: Path, column: str) -> Path:
    """event_features looks up `column` of customers by its group; returns features.yaml."""
    features = root / "lines" / "synth" / "feature_sets.yaml"
    body = yaml.safe_load(features.read_text())
    body["feature_sets"]["event_features"]["features"]["customer_value"] = {
        "lookup": {"dimension": "customers", "key": "grp", "dimension_key": "customer_id", "column": column}
    }
    features.write_text(yaml.safe_dump(body, sort_keys=False))
    return features


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_a_feature_set_reads_a_produced_column_the_docs_omit(factory: Path) -> None:
    add_lookup(factory, "customer_lifetime_value")
    spec = load_line(factory / "lines" / "synth")
    assert "customer_value" in spec.feature_sets["event_features"].features


def test_a_documented_column_the_sql_lacks_is_refused_at_load(factory: Path) -> None:
    features = add_lookup(factory, "total_order_amount")
    with pytest.raises(SpecError) as caught:
        load_line(factory / "lines" / "synth")
    docs = factory / "dbt_project" / "models" / "synth" / "marts" / "_customers.yml"
    sql = factory / "dbt_project" / "models" / "synth" / "marts" / "customers.sql"
    assert str(caught.value).splitlines() == [
        f"{display_path(docs)}: models[0].columns[2]: feature set 'event_features' reads column "
        "'total_order_amount' of dbt model customers, which documents it but its SQL does not produce it: "
        f"documented [{', '.join(DOCUMENTED)}], its SQL produces [{', '.join(PRODUCED)}]: "
        f"fix {display_path(docs)} or {display_path(sql)} (line {line_of(docs, '- name: total_order_amount')})",
        f"{display_path(features)}: feature_sets.event_features.features.customer_value.lookup.column: "
        f"'total_order_amount' is not a column of customers (columns: {', '.join(sorted(PRODUCED))}) "
        f"(line {line_of(features, 'column: total_order_amount')})",
    ]


def test_validate_names_the_drift_in_one_line_and_passes(factory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--root", str(factory), "--line", "synth", "--home", str(factory / "home")]
    assert main(["validate", *args]) == 0
    out = capsys.readouterr().out
    docs = display_path(factory / "dbt_project" / "models" / "synth" / "marts" / "_customers.yml")
    sql = display_path(factory / "dbt_project" / "models" / "synth" / "marts" / "customers.sql")
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: dbt model customers: documents total_order_amount, which its SQL does not produce; "
        "produces customer_lifetime_value, which is not documented: "
        f"documented [{', '.join(DOCUMENTED)}], its SQL produces [{', '.join(PRODUCED)}]: fix {docs} or {sql}",
    ]  # stg_declared documents no column: nothing to drift from


@pytest.mark.e2e
def test_the_produced_column_builds_and_its_values_are_the_sql_s(factory: Path) -> None:
    """The feature step reads the real column (no BinderException): each event gets its group's sum."""
    import dagster as dg

    from factory_dagster.execution.runner import execute, resolve_selection
    from factory_dagster.factory import build_definitions

    staging = factory / "dbt_project" / "models" / "synth" / "staging"
    for name in ("_more_sources.yml", "stg_undeclared.sql", "_stg_undeclared.yml", "stg_declared.sql"):
        (staging / name).unlink()  # they read tables that exist only in the manifest
    prepare_dbt_project(factory / "dbt_project")
    add_lookup(factory, "customer_lifetime_value")
    spec = load_line(factory / "lines" / "synth")
    home = factory / "home"
    defs = build_definitions(specs=[spec], home=home)
    report = execute(defs, dg.DagsterInstance.ephemeral(), resolve_selection(defs, None), log_dir=home / "logs")
    assert report.success, report.failures
    totals: dict[str, float] = defaultdict(float)
    group_of: dict[int, str] = {}
    with (factory / "events.csv").open() as handle:
        for row in csv.DictReader(handle):
            totals[row["grp"]] += float(row["amount"])
            group_of[int(row["id"])] = row["grp"]
    features = pl.read_parquet(home / "features" / "event_features" / "all.parquet")
    assert features.height == len(group_of)
    for event, value in features.select("id", "customer_value").iter_rows():
        assert value == pytest.approx(totals[group_of[event]], rel=1e-9)


def test_other_errors_still_load_beside_a_refused_documented_column(factory: Path) -> None:
    add_lookup(factory, "total_order_amount")
    predictions = factory / "lines" / "synth" / "predictions.yaml"
    predictions.write_text(predictions.read_text().replace("model: label_model", "model: no_such_model"))
    with pytest.raises(SpecError) as caught:
        load_line(factory / "lines" / "synth")
    reasons = [line.split(": ", 2)[-1] for line in str(caught.value).splitlines()]
    assert any(r.startswith("feature set 'event_features' reads column 'total_order_amount'") for r in reasons)
    assert any("no_such_model" in r for r in reasons), reasons
