"""OpenLineage events: one START and one COMPLETE/FAIL per asset of a run, valid against the
schemas (the event against RunEvent, every facet against its own schema), to a file or HTTP."""

from __future__ import annotations

import importlib
import json
import pkgutil
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import attr
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from factory_dagster.lineage.openlineage import FACETS, SPEC, Emitter, emit_run
from factory_dagster.spec import load_line
from factory_dagster.storage.home import FactoryHome
from tests.conftest import REPO, Build

SCHEMAS = REPO / "tests" / "fixtures" / "openlineage"


def load_schemas() -> dict[str, dict]:
    return {doc["$id"]: doc for doc in (json.loads(p.read_text()) for p in SCHEMAS.glob("*.json"))}


@pytest.fixture(scope="module")
def validator():
    docs = load_schemas()
    registry = Registry().with_resources(
        (uri, Resource.from_contents(doc, default_specification=DRAFT202012)) for uri, doc in docs.items()).crawl()
    cache: dict[str, Draft202012Validator] = {}

    def errors(url: str, instance: Any) -> list[str]:
        if url not in cache:
            cache[url] = Draft202012Validator({"$ref": url}, registry=registry,
                                              format_checker=Draft202012Validator.FORMAT_CHECKER)
        return [f"{list(e.absolute_path)}: {e.message}" for e in cache[url].iter_errors(instance)]

    def validate(event: dict) -> list[str]:
        found = errors(SPEC, event)
        facets = [*event["run"].get("facets", {}).values(), *event["job"].get("facets", {}).values()]
        for dataset in event.get("inputs", []) + event.get("outputs", []):
            facets += [*dataset.get("facets", {}).values(), *dataset.get("inputFacets", {}).values()]
        for facet in facets:
            assert facet["_schemaURL"].split("#")[0] in docs, f"no local schema for {facet['_schemaURL']}"
            found += errors(facet["_schemaURL"], facet)
        return found

    return validate


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vendored_facet_schemas_match_openlineage_python() -> None:
    """The generated classes of openlineage-python come from the official schemas: same fields."""
    import openlineage.client.generated as generated

    docs = load_schemas()
    checked = 0
    for module_info in pkgutil.iter_modules(generated.__path__):
        module = importlib.import_module(f"{generated.__name__}.{module_info.name}")
        for cls in vars(module).values():
            if not (isinstance(cls, type) and attr.has(cls) and cls.__module__ == module.__name__
                    and "_get_schema" in vars(cls)):
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
    assert {url.split("#")[0] for url in FACETS.values()} <= set(docs)


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
    assertions = features["facets"]["dataQualityAssertions"]["assertions"]
    assert {"assertion": "expect_column_values_to_be_unique", "success": True, "column": "flight_id"} in assertions
    fct = complete["fct_flights"]["outputs"][0]
    assert fct["namespace"].startswith("duckdb://") and fct["name"] == "main.fct_flights"
    assert any(a["assertion"] == "unique_fct_flights_flight_id" for a in fct["facets"]["dataQualityAssertions"]["assertions"])
    assert {i["name"] for i in complete["stg_weather"]["inputs"]} == {"raw.weather"}
    schema = {f["name"] for f in complete["raw/flights"]["outputs"][0]["facets"]["schema"]["fields"]}
    assert {"dep_delay", "time_hour"} <= schema


def test_a_failed_run_emits_fail_events(flights_build: Build, tmp_path: Path, validator, capsys) -> None:
    from factory_dagster.cli import main
    from tests.test_bad_inputs import DAY, land

    home = tmp_path / "home"
    shutil.copytree(flights_build.home, home, ignore=shutil.ignore_patterns("dagster", "lineage"))
    land(home, "year,month\n2013,4\n")
    assert main(["backfill", "--start", DAY.isoformat(), "--end", DAY.isoformat(), "--no-prepare",
                 "--home", str(home)]) == 1
    assert "OpenLineage: 2 events" in capsys.readouterr().out
    events = read_events(home / "lineage" / "openlineage.jsonl")
    assert [(e["job"]["name"], e["eventType"]) for e in events] == [("raw/flights", "START"), ("raw/flights", "FAIL")]
    assert all(validator(e) == [] for e in events)


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict, str]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, json.loads(body), self.headers.get("Authorization", "")))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_events_go_to_an_http_endpoint_with_the_key_from_the_environment(
        flights_build: Build, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("OPENLINEAGE_URL", f"http://127.0.0.1:{server.server_port}")
        monkeypatch.setenv("OPENLINEAGE_API_KEY", "secret-token")
        home = FactoryHome(tmp_path / "home")
        spec = load_line()
        sent = emit_run(spec, flights_build.defs, home, flights_build.instance, flights_build.reports[0].run_id)
        assert sent == len(Collector.received) == 2 * len(flights_build.reports[0].selected)
        assert {path for path, _, _ in Collector.received} == {"/api/v1/lineage"}
        assert {auth for _, _, auth in Collector.received} == {"Bearer secret-token"}
        # Once per run: a second emission sends nothing.
        assert emit_run(spec, flights_build.defs, home, flights_build.instance,
                        flights_build.reports[0].run_id) == 0
    finally:
        server.shutdown()
    assert Emitter(home, None, None, "NOPE").ledger(flights_build.reports[0].run_id).exists()
