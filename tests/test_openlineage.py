"""OpenLineage events: one START and one COMPLETE/FAIL per asset of a run, valid against the
schemas (the event against RunEvent, every facet against its own schema), sent by the official
client to a file, an HTTP endpoint, or wherever the user's openlineage.yml says."""

from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attr
import dagster as dg
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.lineage.graph import AssetNode, FactoryGraph
from factory_dagster.lineage.openlineage import SPEC, client, emit, emit_run, ledger, run_events
from factory_dagster.products import load_line
from factory_dagster.spec.line import OpenLineageSpec
from factory_dagster.storage.home import FactoryHome
from tests.conftest import FLIGHTS, REPO, Build

SCHEMAS = REPO / "tests" / "fixtures" / "openlineage"


def load_schemas() -> dict[str, dict]:
    return {doc["$id"]: doc for doc in (json.loads(p.read_text()) for p in SCHEMAS.glob("*.json"))}


@pytest.fixture(scope="module")
def validator():
    docs = load_schemas()
    registry = (
        Registry()
        .with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT202012)) for uri, doc in docs.items()
        )
        .crawl()
    )
    cache: dict[str, Draft202012Validator] = {}

    def errors(url: str, instance: Any) -> list[str]:
        if url not in cache:
            cache[url] = Draft202012Validator(
                {"$ref": url}, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
        return [f"{list(e.absolute_path)}: {e.message}" for e in cache[url].iter_errors(instance)]

    def validate(event: dict) -> list[str]:
        found = errors(SPEC, event)
        facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
        for dataset in event.get("inputs", []) + event.get("outputs", []):
            facets += [
                *dataset.get("facets", {}).values(),
                *dataset.get("inputFacets", {}).values(),
                *dataset.get("outputFacets", {}).values(),
            ]
        for facet in facets:
            assert facet["_schemaURL"].split("#")[0] in docs, f"no local schema for {facet['_schemaURL']}"
            found += errors(facet["_schemaURL"], facet)
        return found

    return validate


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assertions_of(dataset: dict) -> set[tuple[str, bool, str | None]]:
    return {
        (a["assertion"], a["success"], a.get("column"))
        for a in dataset["facets"]["dataQualityAssertions"]["assertions"]
    }


def test_vendored_facet_schemas_match_openlineage_python() -> None:
    """The generated classes of openlineage-python come from the official schemas: same fields."""
    import openlineage.client.generated as generated
    from openlineage.client.event_v2 import RunEvent

    docs = load_schemas()
    checked = 0
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for cls in vars(module).values():
            if not (
                isinstance(cls, type)
                and attr.has(cls)
                and cls.__module__ == module.__name__
                and "_get_schema" in vars(cls)
            ):
                continue
            base, _, pointer = cls._get_schema().partition("#")
            if base not in docs or "/spec/facets/" not in base:
                continue
            definition = docs[base]["$defs"][pointer.rsplit("/", 1)[-1]]
            properties = dict(definition.get("properties", {}))
            required = set(definition.get("required", []))
            for part in definition.get("allOf", []):
                properties.update(part.get("properties", {}))
                required |= set(part.get("required", []))
            fields = {f.name: f for f in attr.fields(cls) if f.name not in ("_producer", "_schemaURL", "_deleted")}
            assert set(fields) == set(properties), cls.__name__
            assert {n for n, f in fields.items() if f.default is attr.NOTHING} == required, cls.__name__
            checked += 1
    assert checked >= 8
    assert RunEvent._get_schema() == SPEC


# A small run, fast: a source, a gated feature set built from it, and a model whose step fails.


@dataclass
class SyntheticRun:
    graph: FactoryGraph
    home: FactoryHome
    instance: dg.DagsterInstance
    run_id: str


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SyntheticRun]:
    home = FactoryHome(tmp_path_factory.mktemp("ol_home"))
    schema = dg.TableSchema(columns=[dg.TableColumn("id", "BIGINT"), dg.TableColumn("value", "DOUBLE")])

    @dg.asset(key=["raw", "events"])
    def raw_events() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/column_schema": schema, "dagster/row_count": 3})

    @dg.asset(deps=[raw_events])
    def event_features() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"dagster/column_schema": schema})

    @dg.asset_check(asset=event_features, name=GATE_CHECK)
    def gate() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    @dg.asset(deps=[event_features])
    def label_model() -> None:
        raise RuntimeError("training failed")

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [raw_events, event_features, label_model, gate], instance=instance, raise_on_error=False
        )
        history.gate_dir(home, "event_features").mkdir(parents=True)
        (history.gate_dir(home, "event_features") / f"{result.run_id}.json").write_text(
            json.dumps(
                {
                    "outcomes": [
                        {
                            "expectation": {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "id"}},
                            "success": True,
                        },
                        {
                            "expectation": {"type": "expect_table_row_count_to_be_between", "kwargs": {}},
                            "success": False,
                        },
                    ]
                }
            )
        )

        def node(key: str, role: str, step: str, parents: set[str], **more: Any) -> AssetNode:
            return AssetNode(
                key=key,
                role=role,
                group=None,
                owners=["team:synth"],
                description=f"The {key}.",
                kinds=set(),
                tags={},
                code_version=None,
                parents=parents,
                step=step,
                **more,
            )

        nodes = {
            n.key: n
            for n in [
                node(
                    "raw/events",
                    "source",
                    "raw__events",
                    set(),
                    columns=["id", "value"],
                    metadata={"dagster/row_count": 3},
                ),
                node(
                    "event_features",
                    "feature_set",
                    "event_features",
                    {"raw/events"},
                    column_lineage={"value": [("raw/events", "value")]},
                ),
                node("label_model", "model", "label_model", {"event_features"}),
            ]
        }
        graph = FactoryGraph(spec=SimpleNamespace(dbt_models={}), nodes=nodes, exposures={}, now=time.time())
        yield SyntheticRun(graph, home, instance, result.run_id)


def events_of(run: SyntheticRun) -> list:
    return run_events(run.graph, run.home, run.instance, run.run_id, "synth")


def test_events_of_a_synthetic_run_are_valid(synthetic_run: SyntheticRun, validator) -> None:
    from openlineage.client.serde import Serde

    events = [Serde.to_dict(e) for e in events_of(synthetic_run)]
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [
        ("event_features", "START"),
        ("event_features", "COMPLETE"),
        ("label_model", "START"),
        ("label_model", "FAIL"),
        ("raw/events", "START"),
        ("raw/events", "COMPLETE"),
    ]
    for event in events:
        assert validator(event) == [], event["job"]["name"]
        assert event["run"]["facets"]["parent"]["run"]["runId"] == synthetic_run.run_id
    complete = {e["job"]["name"]: e for e in events if e["eventType"] != "START"}
    features = complete["event_features"]["outputs"][0]
    assert features["namespace"] == "file" and features["name"].endswith("features/event_features")
    assert features["facets"]["columnLineage"]["fields"]["value"]["inputFields"][0]["name"] == "raw.events"
    assert assertions_of(features) == {
        ("expect_column_values_to_be_unique", True, "id"),
        ("expect_table_row_count_to_be_between", False, None),
    }
    assert [f["name"] for f in features["facets"]["schema"]["fields"]] == ["id", "value"]
    source = complete["event_features"]["inputs"][0]
    assert source["inputFacets"]["dataQualityMetrics"]["rowCount"] == 3
    assert complete["raw/events"]["outputs"][0]["name"] == "raw.events"
    assert complete["label_model"]["job"]["facets"]["ownership"]["owners"] == [
        {"name": "team:synth", "type": "MAINTAINER"}
    ]


def test_the_file_transport_writes_what_the_client_serialized(
    synthetic_run: SyntheticRun, tmp_path: Path, validator
) -> None:
    from openlineage.client.serde import Serde

    home = FactoryHome(tmp_path / "home")
    ol_client = client(home, OpenLineageSpec())
    assert ol_client.transport.kind == "file"
    events = events_of(synthetic_run)
    assert emit(ol_client, home, synthetic_run.run_id, events) == len(events) == 6
    path = home.root / "lineage" / "openlineage.jsonl"
    lines = path.read_text().splitlines()
    # The client's Serde wrote each line, after adding its own run facet (its version, as a tag).
    assert lines == [Serde.to_json(e) for e in events]
    for event in map(json.loads, lines):
        assert validator(event) == []
        assert {"key": "openlineage_client_version", "source": "OPENLINEAGE_CLIENT"}.items() <= event["run"]["facets"][
            "tags"
        ]["tags"][0].items()
    # Once per run: a second emission sends nothing; a new run appends to the same file.
    assert emit(client(home, OpenLineageSpec()), home, synthetic_run.run_id, events_of(synthetic_run)) == 0
    assert emit(client(home, OpenLineageSpec()), home, "another-run", events_of(synthetic_run)[:2]) == 2
    assert len(path.read_text().splitlines()) == 8


def test_a_users_openlineage_yml_is_honoured_instead_of_the_spec(
    synthetic_run: SyntheticRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = tmp_path / "users.jsonl"
    config = tmp_path / "openlineage.yml"
    config.write_text(f"transport:\n  type: file\n  log_file_path: {users}\n  append: true\n")
    monkeypatch.setenv("OPENLINEAGE_CONFIG", str(config))
    home = FactoryHome(tmp_path / "home")
    ol_client = client(home, OpenLineageSpec(url="http://127.0.0.1:9/never"))
    assert ol_client.transport.kind == "file"
    assert emit(ol_client, home, synthetic_run.run_id, events_of(synthetic_run)) == 6
    assert len(read_events(users)) == 6
    assert not (home.root / "lineage" / "openlineage.jsonl").exists()


def test_openlineage_disabled_sends_and_records_nothing(
    synthetic_run: SyntheticRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    home = FactoryHome(tmp_path / "home")
    assert emit(client(home, OpenLineageSpec()), home, synthetic_run.run_id, events_of(synthetic_run)) == 0
    assert not (home.root / "lineage" / "openlineage.jsonl").exists()
    assert not ledger(home, synthetic_run.run_id).exists()


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, str]] = []
    status = 201

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(Collector.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    """A lineage endpoint on 127.0.0.1 that records what it receives."""
    Collector.received, Collector.status = [], 201
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_spec_endpoint_gets_the_events_with_the_key_from_the_environment(
    synthetic_run: SyntheticRun, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_LINE_KEY", "secret-token")
    home = FactoryHome(tmp_path / "home")
    ol_client = client(home, OpenLineageSpec(url=endpoint, api_key_env="OPENLINEAGE_LINE_KEY"))
    assert ol_client.transport.kind == "composite"  # the spec's file and its endpoint
    assert emit(ol_client, home, synthetic_run.run_id, events_of(synthetic_run)) == 6 == len(Collector.received)
    assert {(path, auth) for path, _, auth in Collector.received} == {("/api/v1/lineage", "Bearer secret-token")}
    assert [e for _, e, _ in Collector.received] == read_events(home.root / "lineage" / "openlineage.jsonl")


def test_a_failing_endpoint_raises_oserror_and_the_next_attempt_sends_all(
    synthetic_run: SyntheticRun, endpoint: str, tmp_path: Path
) -> None:
    home = FactoryHome(tmp_path / "home")
    config = OpenLineageSpec(url=f"{endpoint}/api/v1/lineage")
    Collector.status = 400
    with pytest.raises(OSError, match="composite transport failed"):
        emit(client(home, config), home, synthetic_run.run_id, events_of(synthetic_run))
    assert not ledger(home, synthetic_run.run_id).exists()
    assert not (home.root / "lineage" / "openlineage.jsonl").exists()  # endpoint first: nothing written
    Collector.status = 201
    assert emit(client(home, config), home, synthetic_run.run_id, events_of(synthetic_run)) == 6
    assert len(read_events(home.root / "lineage" / "openlineage.jsonl")) == 6
    assert [path for path, _, _ in Collector.received] == ["/api/v1/lineage"] * 7  # a 400 is not retried


# The shipped flights line, built once for the session (slow).


def test_a_run_emits_valid_start_and_complete_events(flights_build: Build, validator) -> None:
    events = read_events(flights_build.home / "lineage" / "openlineage.jsonl")
    run_id = flights_build.reports[0].run_id
    events = [e for e in events if e["run"]["facets"]["parent"]["run"]["runId"] == run_id]
    jobs = {e["job"]["name"] for e in events}
    assert jobs == set(flights_build.reports[0].selected)
    for job in jobs:
        kinds = [e["eventType"] for e in events if e["job"]["name"] == job]
        assert kinds == ["START", "COMPLETE"], job
    for event in events:
        assert validator(event) == [], event["job"]["name"]
    complete = {e["job"]["name"]: e for e in events if e["eventType"] == "COMPLETE"}
    features = complete["flight_features"]["outputs"][0]
    assert features["namespace"] == "file" and features["name"].endswith("features/flight_features")
    lineage = features["facets"]["columnLineage"]["fields"]["visibility_mi"]["inputFields"]
    assert [(f["name"], f["field"]) for f in lineage] == [("main.fct_flights", "visibility_mi")]
    assert ("expect_column_values_to_be_unique", True, "flight_id") in assertions_of(features)
    fct = complete["fct_flights"]["outputs"][0]
    assert fct["namespace"].startswith("duckdb://") and fct["name"] == "main.fct_flights"
    assert any(a[0] == "unique_fct_flights_flight_id" for a in assertions_of(fct))
    assert not {a[0] for a in assertions_of(fct)} & {"technical_debt", "ml_test_score"}  # they judge the graph
    assert {i["name"] for i in complete["stg_weather"]["inputs"]} == {"raw.weather"}
    schema = {f["name"] for f in complete["raw/flights"]["outputs"][0]["facets"]["schema"]["fields"]}
    assert {"dep_delay", "time_hour"} <= schema


def test_a_failed_run_emits_fail_events(flights_build: Build, tmp_path: Path, validator, capsys) -> None:
    from factory_dagster.cli import main
    from tests.test_bad_inputs import DAY, land

    home = tmp_path / "home"
    shutil.copytree(flights_build.home, home, ignore=shutil.ignore_patterns("dagster", "lineage"))
    land(home, "year,month\n2013,4\n")
    assert (
        main(["backfill", "--start", DAY.isoformat(), "--end", DAY.isoformat(), "--no-prepare", "--home", str(home)])
        == 1
    )
    assert "OpenLineage: 2 events" in capsys.readouterr().out
    events = read_events(home / "lineage" / "openlineage.jsonl")
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [("raw/flights", "START"), ("raw/flights", "FAIL")]
    assert all(validator(e) == [] for e in events)


def test_events_go_to_an_http_endpoint_with_the_key_from_the_environment(
    flights_build: Build, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENLINEAGE_URL", endpoint)
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "secret-token")
    home = FactoryHome(tmp_path / "home")
    spec = load_line(FLIGHTS)
    run_id = flights_build.reports[0].run_id
    sent = emit_run(spec, flights_build.defs, home, flights_build.instance, run_id)
    assert sent == len(Collector.received) == 2 * len(flights_build.reports[0].selected)
    assert {path for path, _, _ in Collector.received} == {"/api/v1/lineage"}
    assert {auth for _, _, auth in Collector.received} == {"Bearer secret-token"}
    # The client's OPENLINEAGE_URL configuration wins over the spec: no file.
    assert not (home.root / "lineage" / "openlineage.jsonl").exists()
    # Once per run: a second emission sends nothing.
    assert emit_run(spec, flights_build.defs, home, flights_build.instance, run_id) == 0
    assert ledger(home, run_id).exists()
