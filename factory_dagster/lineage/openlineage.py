"""OpenLineage (spec 2-0-2) run events for every asset a Dagster run executed, built and sent by
the official client (`openlineage-python`).

Each asset step becomes one OpenLineage job run: a START event when the step started and a
COMPLETE (materialized) or FAIL (failed, or rejected by its gate) event when it ended, with its
inputs and output, the schema and columnLineage facets, and dataQualityAssertions from its
checks (one per GX expectation of its gate). The Dagster run is the parent. Events go where the
user's OpenLineage configuration says (openlineage.yml, OPENLINEAGE_* variables), else where the
line's spec says (a JSON-lines file under the factory home and/or an HTTP endpoint); each run is
emitted once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from factory_dagster.gates import history
from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.gates.publish import WINDOW_ROWS
from factory_dagster.lineage.checks import GOVERNANCE_CHECKS
from factory_dagster.lineage.graph import AssetNode, FactoryGraph
from factory_dagster.storage.events import run_records
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import active_warehouse

# openlineage-python is imported inside the functions: a heavy import, and definitions (its sensors) must load fast.
if TYPE_CHECKING:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, RunEvent
    from openlineage.client.facet_v2 import data_quality_assertions_dataset

    from factory_dagster.spec.line import OpenLineageSpec

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"  # the client's RunEvent schema
RUN_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_CHECK_EVALUATION,
}


def producer() -> str:
    return f"urn:ai-factory:factory_dagster:{version('factory_dagster')}"


def produced() -> dict[str, Any]:
    """The producer keyword of the client's facets: attrs takes their `_producer` field as
    `producer`, which type checkers do not see."""
    return {"producer": producer()}


def _time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dataset(graph: FactoryGraph, home: FactoryHome, key: str) -> tuple[str, str]:
    """(namespace, name) of an asset's data: a warehouse table or a folder under the factory home."""
    node = graph.nodes.get(key)
    role = node.role if node else "data_product"
    warehouse = active_warehouse(home)  # the active profile's: duckdb://<file> or postgres://host:port
    if role == "source":
        return warehouse.namespace, warehouse.lineage_name(f"raw.{key.split('/', 1)[1]}")
    if role == "data_product":
        relation = graph.spec.dbt_models[key].relation if key in graph.spec.dbt_models else key
        return warehouse.namespace, warehouse.lineage_name(relation)
    folder = {"feature_set": "features", "model": "models", "predictions": "predictions"}.get(role, "reports")
    return "file", str(home.root / folder / key)


def _assertions(
    home: FactoryHome, node: AssetNode, run_id: str, evaluations: list[Any]
) -> list[data_quality_assertions_dataset.Assertion]:
    """One assertion per GX expectation of the asset's gate, one per any other check."""
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    out = []
    for evaluation in evaluations:
        if evaluation.check_name in GOVERNANCE_CHECKS:  # they judge the graph, not the data
            continue
        recorded = history.gate_dir(home, node.key) / f"{run_id}.json"
        if evaluation.check_name == GATE_CHECK and recorded.exists():
            for outcome in json.loads(recorded.read_text(encoding="utf-8"))["outcomes"]:
                expectation = outcome["expectation"]
                column = expectation["kwargs"].get("column")
                out.append(
                    dq.Assertion(
                        assertion=expectation["type"],
                        success=bool(outcome["success"]) and not outcome.get("error"),
                        column=column if isinstance(column, str) else None,
                    )
                )
        else:
            out.append(dq.Assertion(assertion=evaluation.check_name, success=bool(evaluation.passed)))
    return out


def _output(
    graph: FactoryGraph,
    home: FactoryHome,
    node: AssetNode,
    run_id: str,
    metadata: dict[str, Any],
    evaluations: list[Any],
) -> OutputDataset:
    """The asset's data with its schema, column lineage and data-quality assertions."""
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import column_lineage_dataset as cl
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq
    from openlineage.client.facet_v2 import schema_dataset

    namespace, name = dataset(graph, home, node.key)
    facets: dict[str, Any] = {}
    schema = getattr(metadata.get("dagster/column_schema"), "schema", None)
    columns = [(c.name, c.type) for c in schema.columns] if schema is not None else [(c, "") for c in node.columns]
    if columns:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t or None) for n, t in columns],
            **produced(),
        )
    if node.column_lineage:
        fields = {}
        for column, deps in node.column_lineage.items():
            inputs = []
            for asset, upstream in deps:
                ns, nm = dataset(graph, home, asset)
                inputs.append(
                    cl.InputField(
                        namespace=ns,
                        name=nm,
                        field=upstream,
                        transformations=[cl.Transformation(type="DIRECT", subtype="TRANSFORMATION")],
                    )
                )
            fields[column] = cl.Fields(inputFields=inputs)
        facets["columnLineage"] = cl.ColumnLineageDatasetFacet(fields=fields, **produced())
    assertions = _assertions(home, node, run_id, evaluations)
    if assertions:
        facets["dataQualityAssertions"] = dq.DataQualityAssertionsDatasetFacet(assertions=assertions, **produced())
    return OutputDataset(namespace=namespace, name=name, facets=facets)


def _input(graph: FactoryGraph, home: FactoryHome, key: str) -> InputDataset:
    """An upstream asset's data, with its row count when its last materialization recorded one."""
    from openlineage.client.event_v2 import InputDataset
    from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm

    namespace, name = dataset(graph, home, key)
    metadata = graph.nodes[key].metadata if key in graph.nodes else {}
    rows = metadata.get(WINDOW_ROWS, metadata.get("dagster/row_count"))  # a range run's rows, not its last day's
    facets: dict[str, Any] = (
        {"dataQualityMetrics": dqm.DataQualityMetricsInputDatasetFacet(rowCount=rows, columnMetrics={}, **produced())}
        if isinstance(rows, int)
        else {}
    )
    return InputDataset(namespace=namespace, name=name, inputFacets=facets)


def _job(node: AssetNode, namespace: str) -> Job:
    """The asset as an OpenLineage job: its type, owners and description."""
    from openlineage.client.event_v2 import Job
    from openlineage.client.facet_v2 import documentation_job, job_type_job, ownership_job

    facets: dict[str, Any] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="DAGSTER", jobType="ASSET", **produced()
        )
    }
    if node.owners:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=o, type="MAINTAINER") for o in node.owners], **produced()
        )
    if node.description:
        facets["documentation"] = documentation_job.DocumentationJobFacet(
            description=node.description[:2000], **produced()
        )
    return Job(namespace=namespace, name=node.key, facets=facets)


def run_events(
    graph: FactoryGraph, home: FactoryHome, instance: dg.DagsterInstance, run_id: str, namespace: str
) -> list[RunEvent]:
    """START and COMPLETE/FAIL events for every asset the run started to build."""
    from openlineage.client.event_v2 import Run, RunEvent, RunState
    from openlineage.client.facet_v2 import parent_run

    run = instance.get_run_by_id(run_id)
    if run is None:
        return []
    started: dict[str, float] = {}
    ended: dict[str, tuple[float, bool]] = {}
    materialized: dict[str, dict[str, Any]] = {}
    evaluations: dict[str, list[Any]] = {}
    for record in run_records(instance, run_id, RUN_EVENTS):
        event, when = record.event_log_entry.dagster_event, record.event_log_entry.timestamp
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key or ""] = when
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ended[event.step_key or ""] = (when, event.event_type == dg.DagsterEventType.STEP_SUCCESS)
        elif event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            materialized[materialization.asset_key.to_user_string()] = dict(materialization.metadata)
        else:
            evaluation = event.asset_check_evaluation_data
            evaluations.setdefault(evaluation.asset_key.to_user_string(), []).append(evaluation)
    selected = {k.to_user_string() for k in run.asset_selection} if run.asset_selection else set(graph.nodes)
    steps = {key: graph.nodes[key].step for key in selected if key in graph.nodes}

    def parent() -> dict[str, Any]:
        # A fresh facet per event: the client adds its own run facets to each event it emits.
        return {
            "parent": parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_id),
                **produced(),
                job=parent_run.Job(namespace=namespace, name=run.job_name),
            )
        }

    events = []
    for key, step in sorted(steps.items()):
        if step not in started or key not in graph.nodes:
            continue  # skipped: it did not run
        node = graph.nodes[key]
        run_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"dagster-run:{run_id}/{key}"))
        inputs = [_input(graph, home, p) for p in sorted(node.parents)]
        events.append(
            RunEvent(
                eventType=RunState.START,
                eventTime=_time(started[step]),
                **produced(),
                run=Run(runId=run_uuid, facets=parent()),
                job=_job(node, namespace),
                inputs=inputs,
                outputs=[],
            )
        )
        end, step_ok = ended.get(step, (started[step], False))
        done = key in materialized and step_ok
        output = _output(graph, home, node, run_id, materialized.get(key, {}), evaluations.get(key, []))
        events.append(
            RunEvent(
                eventType=RunState.COMPLETE if done else RunState.FAIL,
                eventTime=_time(end),
                **produced(),
                run=Run(runId=run_uuid, facets=parent()),
                job=_job(node, namespace),
                inputs=inputs,
                outputs=[output],
            )
        )
    return events


def ledger(home: FactoryHome, run_id: str) -> Path:
    """The marker of a run whose events were sent."""
    return home.root / "lineage" / "emitted" / run_id


def _http_transport(url: str, api_key: str | None) -> dict[str, Any]:
    """The client's http transport for an endpoint: a base URL, or the full .../lineage URL."""
    base = url.rstrip("/")
    if base.endswith("/lineage"):
        transport: dict[str, Any] = {"type": "http", "url": base, "endpoint": ""}
    else:  # the client joins url and endpoint as URLs: a base path needs its trailing slash
        transport = {"type": "http", "url": base + "/", "endpoint": "api/v1/lineage"}
    if api_key:
        transport["auth"] = {"type": "api_key", "apiKey": api_key}
    return transport


def spec_transport(home: FactoryHome, config: OpenLineageSpec) -> dict[str, Any] | None:
    """The transport config the line's spec asks for: its file, its endpoint, or both."""
    transports = []
    if config.url:
        transports.append(_http_transport(config.url, os.environ.get(config.api_key_env)))
    if config.file:
        transports.append({"type": "file", "log_file_path": str(home.root / config.file), "append": True})
    if len(transports) > 1:
        # Endpoint first, fail fast: if it is down, the file is not written and the next attempt sends all.
        return {"type": "composite", "continue_on_failure": False, "transports": transports}
    return transports[0] if transports else None


def user_configured() -> bool:
    """Whether openlineage.yml or OPENLINEAGE_* variables choose the transport (then the client alone decides)."""
    from openlineage.client import OpenLineageClient
    from openlineage.client.transport.noop import NoopConfig, NoopTransport

    if os.environ.get("OPENLINEAGE_URL"):
        return True
    # A client given a transport still loads the user's config: openlineage.yml, then OPENLINEAGE__* variables.
    probe = OpenLineageClient(transport=NoopTransport(NoopConfig()))
    return bool((probe.config.transport or {}).get("type"))


def client(home: FactoryHome, config: OpenLineageSpec) -> OpenLineageClient:
    """A client sending where the user's OpenLineage config says, else where the spec says; errors as OSError."""
    from openlineage.client import OpenLineageClient

    try:
        transport = None if user_configured() else spec_transport(home, config)
        if transport is None:
            return OpenLineageClient()
        if config.file:
            (home.root / config.file).parent.mkdir(parents=True, exist_ok=True)  # the file transport does not
        return OpenLineageClient(config={"transport": transport})
    except OSError:
        raise
    except Exception as exc:  # a bad openlineage.yml or transport config must not fail a build either
        raise OSError(f"OpenLineage transport not configured: {exc}") from exc


def emit(ol_client: OpenLineageClient, home: FactoryHome, run_id: str, events: list[RunEvent]) -> int:
    """Send a run's events once through the client; a failing transport raises OSError and records nothing."""
    marker = ledger(home, run_id)
    if marker.exists() or not events or ol_client.transport.kind == "noop":
        return 0  # noop: OPENLINEAGE_DISABLED, the run stays unrecorded
    try:
        for event in events:
            ol_client.emit(event)
        ol_client.close()
    except Exception as exc:  # transports fail with RuntimeError, requests errors, or their own (kafka, ...)
        raise OSError(f"OpenLineage {ol_client.transport.kind} transport failed: {exc}") from exc
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return len(events)


def emit_run(spec: Any, assets: Any, home: FactoryHome, instance: dg.DagsterInstance, run_id: str) -> int:
    """Build and send a finished run's events (once per run); returns how many were sent."""
    from factory_dagster.lineage.graph import build_graph

    config = spec.line.openlineage
    if not config.enabled or ledger(home, run_id).exists():
        return 0
    graph = build_graph(spec, assets, instance)
    events = run_events(graph, home, instance, run_id, config.namespace or spec.name)
    if not events:
        return 0
    return emit(client(home, config), home, run_id, events)
