"""OpenLineage (spec 2-0-2) run events for every asset a Dagster run executed.

Each asset step becomes one OpenLineage job run: a START event when the step started and a
COMPLETE (materialized) or FAIL (failed, or rejected by its gate) event when it ended, with its
inputs and output, the schema and columnLineage facets, and dataQualityAssertions from its
checks (one per GX expectation of its gate). The Dagster run is the parent. Events go to a
JSON-lines file under the factory home and/or an HTTP endpoint; each run is emitted once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import urllib.request
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import dagster as dg

from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.lineage.graph import AssetNode, FactoryGraph
from factory_dagster.storage.home import FactoryHome

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = {
    "schema": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
                     "#/$defs/ColumnLineageDatasetFacet",
    "dataQualityAssertions": "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"
                             "#/$defs/DataQualityAssertionsDatasetFacet",
    "dataQualityMetrics": "https://openlineage.io/spec/facets/1-0-3/DataQualityMetricsInputDatasetFacet.json"
                          "#/$defs/DataQualityMetricsInputDatasetFacet",
    "ownership": "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
    "parent": "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "jobType": "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "documentation": "https://openlineage.io/spec/facets/1-1-0/DocumentationJobFacet.json"
                     "#/$defs/DocumentationJobFacet",
}
RUN_EVENTS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
              dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def producer() -> str:
    return f"urn:ai-factory:factory_dagster:{version('factory_dagster')}"


def _facet(name: str, **body: Any) -> dict[str, Any]:
    return {"_producer": producer(), "_schemaURL": FACETS[name], **body}


def _time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dataset(graph: FactoryGraph, home: FactoryHome, key: str) -> tuple[str, str]:
    """(namespace, name) of an asset's data: a warehouse table or a folder under the factory home."""
    node = graph.nodes.get(key)
    role = node.role if node else "data_product"
    warehouse = f"duckdb://{home.warehouse}"
    if role == "source":
        return warehouse, f"raw.{key.split('/', 1)[1]}"
    if role == "data_product":
        relation = graph.spec.dbt_models[key].relation if key in graph.spec.dbt_models else key
        return warehouse, ".".join(part.strip('"') for part in relation.split(".")[-2:])
    folder = {"feature_set": "features", "model": "models", "predictions": "predictions"}.get(role, "reports")
    return "file", str(home.root / folder / key)


def _assertions(home: FactoryHome, node: AssetNode, run_id: str, evaluations: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for evaluation in evaluations:
        recorded = history.gate_dir(home, node.key) / f"{run_id}.json"
        if evaluation.check_name == GATE_CHECK and recorded.exists():
            for outcome in json.loads(recorded.read_text(encoding="utf-8"))["outcomes"]:
                expectation = outcome["expectation"]
                column = expectation["kwargs"].get("column")
                out.append({"assertion": expectation["type"], "success": bool(outcome["success"])
                            and not outcome.get("error"), **({"column": column} if isinstance(column, str) else {})})
        else:
            out.append({"assertion": evaluation.check_name, "success": bool(evaluation.passed)})
    return out


def _output(graph: FactoryGraph, home: FactoryHome, node: AssetNode, run_id: str, metadata: dict[str, Any],
            evaluations: list[Any]) -> dict[str, Any]:
    namespace, name = dataset(graph, home, node.key)
    facets: dict[str, Any] = {}
    schema = getattr(metadata.get("dagster/column_schema"), "schema", None)
    columns = [(c.name, c.type) for c in schema.columns] if schema is not None else [(c, "") for c in node.columns]
    if columns:
        facets["schema"] = _facet("schema", fields=[{"name": n, **({"type": t} if t else {})} for n, t in columns])
    if node.column_lineage:
        fields = {}
        for column, deps in node.column_lineage.items():
            inputs = []
            for asset, upstream in deps:
                ns, nm = dataset(graph, home, asset)
                inputs.append({"namespace": ns, "name": nm, "field": upstream,
                               "transformations": [{"type": "DIRECT", "subtype": "TRANSFORMATION"}]})
            fields[column] = {"inputFields": inputs}
        facets["columnLineage"] = _facet("columnLineage", fields=fields)
    assertions = _assertions(home, node, run_id, evaluations)
    if assertions:
        facets["dataQualityAssertions"] = _facet("dataQualityAssertions", assertions=assertions)
    return {"namespace": namespace, "name": name, "facets": facets}


def _input(graph: FactoryGraph, home: FactoryHome, key: str) -> dict[str, Any]:
    namespace, name = dataset(graph, home, key)
    entry: dict[str, Any] = {"namespace": namespace, "name": name}
    rows = graph.nodes[key].metadata.get("dagster/row_count") if key in graph.nodes else None
    if isinstance(rows, int):
        entry["inputFacets"] = {"dataQualityMetrics": _facet("dataQualityMetrics", rowCount=rows, columnMetrics={})}
    return entry


def run_events(graph: FactoryGraph, home: FactoryHome, instance: dg.DagsterInstance, run_id: str,
               namespace: str) -> list[dict[str, Any]]:
    """START and COMPLETE/FAIL events for every asset the run started to build."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    started: dict[str, float] = {}
    ended: dict[str, tuple[float, bool]] = {}
    materialized: dict[str, dict[str, Any]] = {}
    evaluations: dict[str, list[Any]] = {}
    for record in instance.get_records_for_run(run_id, of_type=RUN_EVENTS).records:
        event, when = record.event_log_entry.dagster_event, record.event_log_entry.timestamp
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = when
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ended[event.step_key] = (when, event.event_type == dg.DagsterEventType.STEP_SUCCESS)
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            materialized[materialization.asset_key.to_user_string()] = dict(materialization.metadata)
        else:
            evaluation = event.event_specific_data
            evaluations.setdefault(evaluation.asset_key.to_user_string(), []).append(evaluation)
    selected = {k.to_user_string() for k in run.asset_selection} if run.asset_selection else set(graph.nodes)
    steps = {key: graph.nodes[key].step for key in selected if key in graph.nodes}
    parent = _facet("parent", run={"runId": run_id}, job={"namespace": namespace, "name": run.job_name})
    events = []
    for key, step in sorted(steps.items()):
        if step not in started or key not in graph.nodes:
            continue  # skipped: it did not run
        node = graph.nodes[key]
        run_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dagster-run:{run_id}/{key}"))
        job = {"namespace": namespace, "name": key, "facets": {
            "jobType": _facet("jobType", processingType="BATCH", integration="DAGSTER", jobType="ASSET"),
            **({"ownership": _facet("ownership", owners=[{"name": o, "type": "MAINTAINER"} for o in node.owners])}
               if node.owners else {}),
            **({"documentation": _facet("documentation", description=node.description[:2000])}
               if node.description else {}),
        }}
        base = {"producer": producer(), "schemaURL": SPEC, "job": job,
                "run": {"runId": run_uuid, "facets": {"parent": parent}},
                "inputs": [_input(graph, home, p) for p in sorted(node.parents)]}
        events.append({**base, "eventType": "START", "eventTime": _time(started[step]), "outputs": []})
        end, step_ok = ended.get(step, (started[step], False))
        done = key in materialized and step_ok
        output = _output(graph, home, node, run_id, materialized.get(key, {}), evaluations.get(key, []))
        events.append({**base, "eventType": "COMPLETE" if done else "FAIL", "eventTime": _time(end),
                       "outputs": [output]})
    return events


class Emitter:
    """Sends a run's events once: appended to the JSON-lines file, POSTed to the endpoint."""

    def __init__(self, home: FactoryHome, file: str | None, url: str | None, api_key_env: str):
        self.home = home
        self.file = home.root / file if file else None
        self.url = url or os.environ.get("OPENLINEAGE_URL")
        self.api_key = os.environ.get(api_key_env)

    def ledger(self, run_id: str) -> Path:
        return self.home.root / "lineage" / "emitted" / run_id

    def emit(self, run_id: str, events: list[dict[str, Any]]) -> int:
        marker = self.ledger(run_id)
        if marker.exists() or not events:
            return 0
        # The endpoint first: if it fails, nothing is recorded and the next attempt sends all.
        if self.url:
            for event in events:
                self._post(event)
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.file, "a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(e, default=str) + "\n" for e in events))
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return len(events)

    def _post(self, event: dict[str, Any]) -> None:
        endpoint = self.url.rstrip("/") + ("" if self.url.rstrip("/").endswith("/lineage") else "/api/v1/lineage")
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(endpoint, data=json.dumps(event, default=str).encode(), headers=headers,
                                         method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status >= 300:
                raise OSError(f"OpenLineage endpoint {endpoint} answered {response.status}")


def emit_run(spec: Any, assets: Any, home: FactoryHome, instance: dg.DagsterInstance, run_id: str) -> int:
    """Build and send a finished run's events (once per run); returns how many were sent."""
    from factory_dagster.lineage.graph import build_graph

    config = spec.line.openlineage
    if not config.enabled:
        return 0
    emitter = Emitter(home, config.file, config.url, config.api_key_env)
    if emitter.ledger(run_id).exists():
        return 0
    graph = build_graph(spec, assets, instance)
    return emitter.emit(run_id, run_events(graph, home, instance, run_id, config.namespace or spec.line.name))

