"""Execute a selection of the factory's assets in-process, with a live progress display."""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import dagster as dg

from factory_dagster.automation.partitions import RANGE_END, RANGE_START, check_range
from factory_dagster.compat import AssetGraph, instance_connection_errors
from factory_dagster.execution.report import RunReport, build_report
from factory_dagster.lineage.graph import REPORT_GROUP
from factory_dagster.products.kind import BuildableKind
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.product import ProductKind
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.profile import ProfileError
from factory_dagster.storage.warehouse import active_warehouse

QUIET_LOGGERS = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# Names a `factory` run before Dagster gives it an id (`execute_job` picks its own): the progress
# display finds the run by it.
REQUEST_TAG = "factory/request"
ProgressCallback = Callable[[int, str], None]  # (assets done, what is running now)


def resolve_selection(defs: dg.Definitions, selection: str | None) -> list[dg.AssetKey]:
    """Asset keys for a Dagster selection string (`+fct_flights`, `group:marts`, ...).

    Without a selection: every asset but the governance reports, which judge the graph rather
    than belong to it (select them with `group:governance`).
    """
    graph = defs.resolve_asset_graph()
    if not selection:
        return sorted(k for k in graph.materializable_asset_keys if graph.get(k).group_name != REPORT_GROUP)
    keys = dg.AssetSelection.from_string(selection).resolve(graph)
    return sorted(k for k in keys if k in graph.materializable_asset_keys)


class SelectionError(Exception):
    """A selection that one run cannot execute (e.g. two different partitionings)."""


def partition_tags(
    defs: dg.Definitions, keys: list[dg.AssetKey], first: str | None = None, last: str | None = None
) -> dict[str, str]:
    """Range tags covering the selection's partitions: all of them, or `first`..`last`.

    One run executes one partition range (single-run backfill policies); unpartitioned assets
    in the selection run once in it.
    """
    graph = defs.resolve_asset_graph()
    definitions = {d for k in keys if (d := graph.get(k).partitions_def) is not None}
    if not definitions:
        if first or last:
            raise SelectionError("the selection has no partitioned asset")
        return {}
    if len(definitions) > 1:
        raise SelectionError("the selection mixes assets partitioned in different ways; select one partitioning")
    (definition,) = definitions
    try:
        start, end = check_range(definition, first, last)
    except ValueError as exc:
        raise SelectionError(str(exc)) from None
    return {RANGE_START: start, RANGE_END: end}


@dataclass
class Prerequisites:
    """Upstreams of a partition range, outside it, that were never materialized in the home.

    `buildable` need no partition (raw tables, staging models, dimensions): one run before the
    range builds them. The others are partitioned or computed from partitioned assets (a model
    trained on a feature set) and cannot come first; `needing` maps each to the selected keys that
    read it.
    """

    buildable: list[dg.AssetKey] = field(default_factory=list)
    needing: dict[dg.AssetKey, list[dg.AssetKey]] = field(default_factory=dict)

    @property
    def left_out(self) -> list[dg.AssetKey]:
        """The selected keys a range run cannot build before a blocked prerequisite is."""
        return sorted({key for keys in self.needing.values() for key in keys})


Built = Callable[[dg.AssetKey], bool]  # whether the home holds an asset


def built_in(home: FactoryHome, specs: Sequence[FactorySpec], instance: dg.DagsterInstance) -> Built:
    """Whether `home` holds an asset: Dagster recorded a materialization of it, or its output is
    where its kind keeps it (a warehouse relation, a model's registry), as in a home whose Dagster
    instance was reset or not copied. Each key is looked up once."""

    @functools.cache
    def built(key: dg.AssetKey) -> bool:
        if instance.get_latest_materialization_event(key) is not None:
            return True
        for spec in specs:
            if (product := spec.product_of_key(key.to_user_string())) is not None:
                return _stored(home, spec, *product)
        return False

    return built


def _stored(home: FactoryHome, spec: FactorySpec, kind: ProductKind, name: str) -> bool:
    if kind.readable:
        return active_warehouse(home).relation_exists(kind.relation(spec, name))  # type: ignore[attr-defined]  # readable kinds have one
    return isinstance(kind, BuildableKind) and bool(kind.stored(spec, name, home))


def missing_prerequisites(defs: dg.Definitions, keys: list[dg.AssetKey], built: Built) -> Prerequisites:
    """What a range run over `keys` reads from outside `keys` that the home does not hold."""
    graph = defs.resolve_asset_graph()
    found = Prerequisites()
    for key in sorted(_never_built(graph, built, keys)):
        if _needs_partitions(graph, key):
            found.needing[key] = sorted(k for k in keys if key in dg.AssetSelection.assets(k).upstream().resolve(graph))
        else:
            found.buildable.append(key)
    while found.buildable:  # whole steps, and what those read that is missing too
        wider = _whole_steps(graph, found.buildable)
        wider |= _never_built(graph, built, sorted(wider))
        if wider == set(found.buildable):
            break
        found.buildable = sorted(wider)
    return found


def _never_built(graph: AssetGraph, built: Built, keys: list[dg.AssetKey]) -> set[dg.AssetKey]:
    """Materializable upstreams of `keys`, outside them, that the home does not hold."""
    upstream = dg.AssetSelection.assets(*keys).upstream().resolve(graph) - set(keys)
    return {key for key in upstream if key in graph.materializable_asset_keys and not built(key)}


def _needs_partitions(graph: AssetGraph, key: dg.AssetKey) -> bool:
    ancestors = dg.AssetSelection.assets(key).upstream().resolve(graph)
    return any(graph.get(a).partitions_def is not None for a in ancestors)


def _whole_steps(graph: AssetGraph, keys: list[dg.AssetKey]) -> set[dg.AssetKey]:
    """`keys` and the other assets of their steps, when those need no partition.

    A whole dbt step runs with its own selection and exclusions; a part of one runs as a list of
    models, whose tests dbt then selects eagerly, including a relationship test on a partitioned
    model that is not built yet (`Table with name fct_flights does not exist`).
    """
    wanted = set(keys)
    for assets_def in graph.assets_defs:
        if wanted & set(assets_def.keys) and not any(_needs_partitions(graph, k) for k in assets_def.keys):
            wanted.update(assets_def.keys)
    return wanted


def step_assets(defs: dg.Definitions, keys: list[dg.AssetKey]) -> dict[str, list[str]]:
    """Which selected assets each step materializes (a dbt step has many)."""
    wanted = set(keys)
    mapping: dict[str, list[str]] = {}
    for assets_def in defs.resolve_asset_graph().assets_defs:
        step = assets_def.node_def.name
        owned = [k.to_user_string() for k in assets_def.keys if k in wanted]
        if owned:
            mapping.setdefault(step, []).extend(owned)
    return mapping


class _Watcher(threading.Thread):
    """Polls the run's step events and reports progress until stopped.

    Steps, not materializations: a range run writes one materialization per partition and
    asset, thousands of events a poll would read back; a step's end marks its assets done.
    """

    KINDS = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}

    def __init__(
        self,
        instance: dg.DagsterInstance,
        request: str,
        on_progress: ProgressCallback,
        step_assets: Mapping[str, list[str]],
    ):
        super().__init__(daemon=True)
        self.instance, self.request, self.on_progress = instance, request, on_progress
        self.step_assets = step_assets
        self.stopped = threading.Event()

    def run(self) -> None:
        cursor: str | None = None
        done: set[str] = set()
        current = "starting"
        run_id: str | None = None
        while not self.stopped.wait(0.5):
            try:
                if run_id is None:
                    runs = self.instance.get_run_ids(filters=dg.RunsFilter(tags={REQUEST_TAG: self.request}), limit=1)
                    if not runs:
                        continue
                    run_id = runs[0]
                connection = self.instance.get_records_for_run(run_id, cursor=cursor, of_type=self.KINDS)
            except Exception:  # the run may not be stored yet
                continue
            cursor = connection.cursor
            for record in connection.records:
                event = record.event_log_entry.dagster_event
                if event is None or event.step_key is None:
                    continue
                if event.event_type == dg.DagsterEventType.STEP_START:
                    current = event.step_key
                else:
                    done.update(self.step_assets.get(event.step_key, []))
            self.on_progress(len(done), current)


def execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    keys: list[dg.AssetKey],
    tags: Mapping[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    log_dir: Path | None = None,
    job: dg.ReconstructableJob | None = None,
) -> RunReport:
    """Materialize `keys` (and their checks) in one run; return what happened.

    Without `job`, in this process. With `job` (the same definitions, rebuildable elsewhere), by
    the definitions' executor: the production profile's Celery workers run the steps while this
    process orchestrates. With `log_dir`, Dagster's console log is silenced and whatever the run
    prints here (dbt's output, when in process) goes to `<log_dir>/<run id>.log` instead.
    """
    request = str(uuid.uuid4())  # Dagster's own run ids are UUID4 strings
    run_tags = {**(tags or {}), REQUEST_TAG: request}
    steps = step_assets(defs, keys)
    watcher = _Watcher(instance, request, on_progress, steps) if on_progress else None
    log_path = log_dir / f"{request}.log" if log_dir else None
    started = time.monotonic()
    if watcher:
        watcher.start()
    with contextlib.ExitStack() as stack:
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(contextlib.redirect_stdout(stack.enter_context(open(log_path, "w"))))
        run_config = QUIET_LOGGERS if log_path else None
        try:
            if job is None:
                run_id = (
                    job_of(defs)
                    .execute_in_process(
                        instance=instance,
                        asset_selection=keys,
                        run_id=request,
                        tags=run_tags,
                        raise_on_error=False,
                        run_config=run_config,
                    )
                    .run_id
                )
            else:
                run_id = execute_distributed(job, instance, keys, run_tags, run_config)
        finally:
            if watcher:
                watcher.stopped.set()
                watcher.join()
    elapsed = time.monotonic() - started
    selected = [k.to_user_string() for k in keys]
    try:
        # The run can end while the database is still dropping connections: read it back once
        # the database answers again.
        report = retrying(
            lambda: build_report(instance, run_id, selected, elapsed, steps), instance_connection_errors()
        )
    except instance_connection_errors() as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ProfileError(
            f"run {run_id} ended, but the Dagster instance database did not answer for "
            f"{INSTANCE_RETRY_SECONDS} s to read its outcome: {reason}"
        ) from exc
    report.log_path = log_path
    return report


# The reason a run that lost its orchestrator is marked failed with; the report names it `run`.
ORCHESTRATION_FAILURE = "run"


def execute_distributed(
    job: dg.ReconstructableJob,
    instance: dg.DagsterInstance,
    keys: list[dg.AssetKey],
    tags: Mapping[str, str],
    run_config: Mapping[str, object] | None,
) -> str:
    """Run `job` by its executor; the run's id.

    Step errors end in the run's events; what escapes `execute_job` broke the orchestration itself
    (the instance's database dropped the connection, the broker went away): the run, left
    started, is marked failed with that error in one line, so it never looks like it is running.
    """
    try:
        return dg.execute_job(job, instance, run_config=run_config, tags=tags, asset_selection=keys).run_id
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        failed = mark_failed(instance, tags[REQUEST_TAG], f"[{ORCHESTRATION_FAILURE}]: {type(exc).__name__}: {reason}")
        if failed is None:
            raise
        return failed


# A dropped database connection is usually brief: reading or marking a run retries this long.
INSTANCE_RETRY_SECONDS = 60

T = TypeVar("T")


def retrying(call: Callable[[], T], errors: tuple[type[Exception], ...]) -> T:
    """`call()`, again every 2 s while it raises one of `errors`, for up to `INSTANCE_RETRY_SECONDS`;
    then the last error."""
    deadline = time.monotonic() + INSTANCE_RETRY_SECONDS
    while True:
        try:
            return call()
        except errors:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def mark_failed(instance: dg.DagsterInstance, request: str, message: str) -> str | None:
    """Mark the run of `request` failed (unless it finished) and return its id; None when the
    instance cannot be reached within `INSTANCE_RETRY_SECONDS` or never stored the run."""

    def mark() -> str | None:
        runs = instance.get_runs(filters=dg.RunsFilter(tags={REQUEST_TAG: request}), limit=1)
        if runs and not runs[0].is_finished:
            instance.report_run_failed(runs[0], message)
        return runs[0].run_id if runs else None

    try:
        return retrying(mark, (Exception,))  # whatever broke, the database is likely still away
    except Exception:
        return None


def job_of(defs: dg.Definitions) -> dg.JobDefinition:
    return defs.resolve_implicit_global_asset_job_def()
