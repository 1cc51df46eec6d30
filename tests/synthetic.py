"""Small synthetic factories, written as factory roots (lines/<line>/, expectations/<line>/,
dbt_project/models/<line>/), for planting one debt at a time.

The clean factory: a raw `events` source → `event_features` → `label_model` → `label_scores`,
every product owned, described, keyed, gated (with a drift bound), fresh and seeded. With
`dbt_steps`, the source goes through a generated dbt project (stg → int_step_1..n → fct) first.
"""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import numpy as np
import yaml

from tests.conftest import REPO

OWNER = "team:synth"


def write_events(path: Path, rows: int = 600, days: int = 40) -> None:
    rng = np.random.default_rng(7)
    start = dt.date(2024, 1, 1)
    lines = ["id,day,grp,value,amount,label"]
    for i in range(rows):
        value = float(rng.normal(10, 3))
        label = int(value + rng.normal(0, 2) > 11)
        lines.append(
            f"{i},{start + dt.timedelta(days=i % days)},{'ABC'[i % 3]},{value:.3f},"
            f"{abs(rng.normal(50, 10)):.3f},{label}"
        )
    path.write_text("\n".join(lines) + "\n")


def suite(name: str, expectations: list[tuple]) -> dict:
    return {
        "name": name,
        "expectations": [{"type": t, "kwargs": k, "meta": {}, "severity": s} for t, k, s in expectations],
    }


def key_expectations(column: str) -> list[tuple]:
    return [
        ("expect_column_values_to_not_be_null", {"column": column}, "critical"),
        ("expect_column_values_to_be_unique", {"column": column}, "critical"),
    ]


def features_suite(name: str, drift_column: str = "value") -> dict:
    return suite(
        name,
        [
            *key_expectations("id"),
            (
                "expect_column_mean_to_be_between",
                {"column": drift_column, "min_value": -1e9, "max_value": 1e9},
                "warning",
            ),
        ],
    )


def scores_suite(name: str) -> dict:
    return suite(
        name,
        [
            *key_expectations("id"),
            ("expect_column_values_to_be_between", {"column": "score", "min_value": 0, "max_value": 1}, "critical"),
            ("expect_column_mean_to_be_between", {"column": "score", "min_value": 0, "max_value": 1}, "warning"),
        ],
    )


def key_by_scorer(path: Path) -> None:
    """Make a scores suite key rows as a slot's predictions do: every member scores each row."""
    content = json.loads(path.read_text())
    for expectation in content["expectations"]:
        if expectation["type"] == "expect_column_values_to_be_unique":
            expectation["type"] = "expect_compound_columns_to_be_unique"
            expectation["kwargs"] = {"column_list": ["id", "model_name", "model_version"]}
    path.write_text(json.dumps(content))


def model_entry(features: dict, seed: bool = True, estimator: str = "LogisticRegression") -> dict:
    entry = {
        "description": "Predicts the label of an event.",
        "owner": OWNER,
        "features": features,
        "target": {"column": "label", "op": "eq", "value": 1},
        "estimator": {"name": estimator},
        "split": {"train_days": 25, "test_days": 10},
        "freshness": {"fail_after": "8d"},
    }
    return {**entry, "seed": 1} if seed else entry


def predictions_entry(model: str, days: int = 10) -> dict:
    return {
        "description": f"Scores of the latest {days} days.",
        "owner": OWNER,
        "model": model,
        "score": {"last_days": days},
        "freshness": {"fail_after": "2d"},
    }


def feature_set_entry(source: str, features: dict, labels: list[str] | None = None, what: str = "an event") -> dict:
    return {
        "description": f"What is known about {what}.",
        "owner": OWNER,
        "source": source,
        "entity": "id",
        "timestamp": "day",
        "labels": labels or [],
        "features": features,
    }


def write_dbt(root: Path, steps: int, unowned: str | None = None, line: str = "synth", prefix: str = "") -> None:
    """The line's models in the factory root's dbt project (`root/dbt_project/models/<line>/`):
    stg_events → int_step_1 … int_step_n → fct_events (each name after `prefix`), each tested and
    documented; fct exposed. dbt_project.yml configures every line that has models there, each in
    the Dagster group named after its line."""
    project = root / "dbt_project"
    models = project / "models" / line
    for folder in ("staging", "intermediate", "marts"):
        (models / folder).mkdir(parents=True, exist_ok=True)
    lines = sorted(p.name for p in (project / "models").iterdir() if p.is_dir())
    layers = (("staging", "view"), ("intermediate", "view"), ("marts", "table"))
    configs = "".join(
        f"    {name}:\n"
        + "".join(
            f'      {layer}: {{+materialized: {materialized}, +meta: {{dagster: {{group: {name}, owners: ["{OWNER}"]}}}}}}\n'
            for layer, materialized in layers
        )
        for name in lines
    )
    (project / "dbt_project.yml").write_text(
        textwrap.dedent("""\
        name: factory
        version: "1.0.0"
        profile: factory
        config-version: 2
        models:
          factory:
        """)
        + configs
    )
    (project / "profiles.yml").write_text((REPO / "dbt_project" / "profiles.yml").read_text())
    events = f"{prefix}events"
    (models / "staging" / "_sources.yml").write_text(
        textwrap.dedent(f"""\
        version: 2
        sources:
          - name: raw
            schema: raw
            tables: [{{name: {events}, description: Raw events.}}]
        """)
    )
    columns = ["id", "day", "grp", "value", "amount", "label"]
    chain = [("staging", f"{prefix}stg_events", f"{{{{ source('raw', '{events}') }}}}", [])]
    previous = f"{prefix}stg_events"
    extra: list[str] = []
    for step in range(1, steps + 1):
        extra = [*extra, f"v_{step}"]
        chain.append(("intermediate", f"{prefix}int_step_{step}", f"{{{{ ref('{previous}') }}}}", list(extra)))
        previous = f"{prefix}int_step_{step}"
    chain.append(("marts", f"{prefix}fct_events", f"{{{{ ref('{previous}') }}}}", [*extra, "volume"]))
    for folder, name, upstream, added in chain:
        if name.startswith(f"{prefix}int_step_"):
            step = int(name.rsplit("_", 1)[1])
            select = f"select *, value + {step} as v_{step} from {upstream}"
        elif name == f"{prefix}fct_events":
            select = f"select *, value * amount as volume from {upstream}"
        else:
            select = f"select * from {upstream}"
        config = ("{{ config(meta={'dagster': {'group': '" + line + "'}}) }}\n") if name == unowned else ""
        (models / folder / f"{name}.sql").write_text(config + select + "\n")
        described = [{"name": c, "description": f"The {c}."} for c in columns + added]
        described[0]["data_tests"] = ["unique", "not_null"]
        (models / folder / f"_{name}.yml").write_text(
            json.dumps(
                {"version": 2, "models": [{"name": name, "description": f"Events, step {name}.", "columns": described}]}
            )
        )
    (models / "marts" / "_exposures.yml").write_text(
        textwrap.dedent(f"""\
        version: 2
        exposures:
          - name: {prefix}events_dashboard
            type: dashboard
            description: Reads the events mart.
            owner: {{name: Synth, email: synth@example.com}}
            depends_on: [ref('{prefix}fct_events')]
        """)
    )


def make_factory(
    root: Path,
    *,
    gate_source: bool = True,
    seed: bool = True,
    spare_feature_set: bool = False,
    explicit_features: bool = False,
    stacked_model: bool = False,
    untrained_model: bool = False,
    dbt_steps: int = 0,
    unowned_model: str | None = None,
    line: str = "synth",
    prefix: str = "",
) -> Path:
    """A synthetic line in the factory root `root` (created if need be): `root/factory.yaml` serving
    it (added to the lines already there), its specs in `root/lines/<line>/`, its suites in
    `root/expectations/<line>/`, its data file in `root`, and with `dbt_steps` its models in
    `root/dbt_project/models/<line>/` (run `prepare_dbt_project(root / "dbt_project")` before
    loading). Every product name starts with `prefix` (names are unique across a factory's lines).
    Returns the line folder."""
    specs, suites = root / "lines" / line, root / "expectations" / line
    specs.mkdir(parents=True)
    suites.mkdir(parents=True)
    config = root / "factory.yaml"
    served = (yaml.safe_load(config.read_text()) or {}).get("lines", []) if config.exists() else []
    config.write_text(yaml.safe_dump({"lines": [*served, line]}))

    def n(name: str) -> str:
        return f"{prefix}{name}"

    data = root / f"{n('events')}.csv"
    write_events(data)
    line_spec: dict = {
        "description": "A synthetic line.",
        "automation": {"enabled": False},
        "openlineage": {"enabled": False},
    }
    if dbt_steps:
        write_dbt(root, dbt_steps, unowned_model, line, prefix)
    sources = {
        n("events"): {
            "description": "Raw events.",
            "owner": OWNER,
            "file": str(data),
            "primary_key": ["id"],
            "columns": {
                "id": "int",
                "day": "date",
                "grp": "string",
                "value": "float",
                "amount": "float",
                "label": "int",
            },
        }
    }
    feature_sets = {
        n("event_features"): feature_set_entry(
            n("fct_events") if dbt_steps else n("events"),
            {
                "grp": "grp",
                "value": "value",
                "amount_ratio": {"ratio": {"numerator": "amount", "denominator": "value"}},
            },
            ["label"],
        )
    }
    models = {
        n("label_model"): model_entry({n("event_features"): ["grp", "value"] if explicit_features else "all"}, seed)
    }
    predictions = {n("label_scores"): predictions_entry(n("label_model"))}
    documents = {
        n("event_features"): features_suite(n("event_features")),
        n("label_scores"): scores_suite(n("label_scores")),
    }
    if gate_source:
        documents[f"raw.{n('events')}"] = suite(f"raw.{n('events')}", key_expectations("id"))
    if spare_feature_set:
        feature_sets[n("spare_features")] = feature_set_entry(n("events"), {"value": "value"}, what="nothing in use")
        documents[n("spare_features")] = features_suite(n("spare_features"))
    if stacked_model:  # the second model learns from the first one's scores of every day
        predictions[n("label_scores")] = predictions_entry(n("label_model"), days=40)
        feature_sets[n("score_features")] = feature_set_entry(
            n("label_scores"), {"prior_score": "score"}, what="the first model's opinion"
        )
        models[n("stacked_model")] = model_entry({n("event_features"): ["grp"], n("score_features"): "all"})
        predictions[n("stacked_scores")] = predictions_entry(n("stacked_model"))
        documents[n("score_features")] = features_suite(n("score_features"), "prior_score")
        documents[n("stacked_scores")] = scores_suite(n("stacked_scores"))
    if untrained_model:
        models[n("label_model_v2")] = model_entry({n("event_features"): "all"}, estimator="RandomForestClassifier")
    for name, body in (
        ("line", line_spec),
        ("sources", sources),
        ("feature_sets", feature_sets),
        ("models", models),
        ("predictions", predictions),
    ):
        (specs / f"{name}.yaml").write_text(yaml.safe_dump({name: body}, sort_keys=False))
    for name, document in documents.items():
        (suites / f"{name}.json").write_text(json.dumps(document))
    return specs
