"""The predictions kind: the served model's scores, per partition or over the latest days, with
the model version on every row, written as parquet and published as a warehouse view."""

# No `from __future__ import annotations`: Dagster reads the asset function's resource annotations.
import datetime as dt

import dagster as dg
import numpy as np
import polars as pl
from dagster import AssetExecutionContext
from pydantic import PositiveInt, model_validator

from factory_dagster.automation.conditions import follow_upstream
from factory_dagster.automation.partitions import partitions_def, window_of
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.products import monitor
from factory_dagster.products.feature_set import write_partitions
from factory_dagster.products.kind import (
    BuildableKind,
    BuildContext,
    ColumnDeps,
    code_version,
    lineage_metadata,
    product_asset,
)
from factory_dagster.products.metadata import frame_markdown, partition_rows, table_metadata
from factory_dagster.products.model import (
    FeatureDataError,
    ModelSpec,
    model_frame,
    model_inputs,
    model_registry,
)
from factory_dagster.products.slot import CHAMPION, Scorer, slot_of, slot_scorers
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.column_kinds import Kind
from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.product import ProductSpec
from factory_dagster.spec.references import check_partitions_name
from factory_dagster.spec.types import Name, Strict
from factory_dagster.storage.artifacts import ArtifactIntegrityError
from factory_dagster.storage.datasets import Dataset
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import Warehouse, quote

PREDICTIONS = "predictions"  # the warehouse schema of the views, and the folder under the factory home
SCORE = "score"
PREDICTED = "predicted"  # classification only: score >= the model's threshold
ROLE = "role"  # a slot's predictions only: champion (served) or challenger (in shadow)


class ScoreSpec(Strict):
    last_days: PositiveInt


class PredictionsSpec(ProductSpec):
    """Scores of the served model: per partition (`partitions`), or the latest `score.last_days`."""

    model: Name
    score: ScoreSpec | None = None
    partitions: Name | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "PredictionsSpec":
        if (self.score is None) == (self.partitions is None):
            raise ValueError("give exactly one of partitions (score each day) or score.last_days")
        return self


def output_schema(spec: FactorySpec, name: str) -> dict[str, Kind]:
    """The columns a predictions asset writes, in order: the entity (every column of it) and time
    of what it scored, the score, the decision (classification), and which model version scored it
    (in which role, for a slot), when."""
    model: ModelSpec = spec.models[spec.predictions[name].model]
    first = spec.feature_sets.get(next(iter(model.features)))
    # What was scored keeps its source's values; its kind is not looked up (a feature set may read predictions).
    keys: dict[str, Kind] = {c: "unknown" for c in first.key_columns()} if first is not None else {}
    decision: dict[str, Kind] = {PREDICTED: "bool"} if model.task == "classification" else {}
    return {
        **keys,
        SCORE: "numeric",
        "model_name": "string",
        "model_version": "string",
        **({ROLE: "string"} if slot_of(spec, spec.predictions[name].model) else {}),
        "scored_at": "timestamp",
        **decision,
    }


class PredictionsKind(BuildableKind):
    section = "predictions"
    spec_model = PredictionsSpec
    label = "prediction"
    readable = True
    role = "predictions"

    def relation(self, spec: FactorySpec, name: str) -> str:
        return f"{quote(PREDICTIONS)}.{quote(name)}"

    def columns(self, spec: FactorySpec, name: str) -> dict[str, Kind] | None:
        if spec.predictions[name].model not in spec.models:
            return None
        return output_schema(spec, name)

    def row_key(self, spec: FactorySpec, name: str) -> list[str] | None:
        """What was scored: the entity (all its columns) of the model's first feature set (and, for
        a slot, which model version scored it: each row is scored by every member)."""
        model: ModelSpec = spec.models[spec.predictions[name].model]
        first = spec.feature_sets.get(next(iter(model.features)))
        scorer = ["model_name", "model_version"] if slot_of(spec, spec.predictions[name].model) else []
        return [*first.entity_columns(), *scorer] if first is not None else None

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        return check_predictions(spec, name)

    def lineage(self, spec: FactorySpec, name: str) -> ColumnDeps:
        predictions = spec.predictions[name]
        model: ModelSpec = spec.models[predictions.model]
        first = next(iter(model.features))
        fs = spec.feature_sets[first]
        score = [
            (member, column)
            for member in scoring_models(spec, name)
            for column in model_inputs(spec, spec.models[member])
        ]
        lineage: ColumnDeps = {c: [(first, c)] for c in fs.key_columns()}
        lineage[SCORE] = score
        if model.task == "classification":
            lineage[PREDICTED] = score
        return lineage

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return [build_predictions_asset(spec, name, context) for name in names]


KIND = PredictionsKind()


def check_predictions(spec: FactorySpec, name: str) -> list[SpecError]:
    predictions: PredictionsSpec = spec.predictions[name]
    errors: list[SpecError] = []
    if predictions.model not in spec.models:
        errors.append(
            spec.error(
                "predictions", name, ("model",), f"unknown model '{predictions.model}' (known: {known(spec.models)})"
            )
        )
        return errors
    check_partitions_name(spec, "predictions", name, ("partitions",), predictions.partitions, errors)
    if predictions.partitions is not None:
        for fs_name in spec.models[predictions.model].features:
            if fs_name in spec.feature_sets and spec.feature_sets[fs_name].partitions != predictions.partitions:
                errors.append(
                    spec.error(
                        "predictions",
                        name,
                        ("partitions",),
                        f"scoring by '{predictions.partitions}' partitions needs the model's feature set "
                        f"'{fs_name}' partitioned the same way",
                    )
                )
    return errors


def scoring_models(spec: FactorySpec, name: str) -> list[str]:
    """The models that score a predictions asset: its model, or every member of its model's slot."""
    model = spec.predictions[name].model
    slot = slot_of(spec, model)
    return list(spec.slots[slot].members) if slot else [model]


def predictions_dataset(home: FactoryHome, name: str) -> Dataset:
    return Dataset(home.dataset_dir(PREDICTIONS, name))


def publish_view(warehouse: Warehouse, name: str, dataset: Dataset, partitioned: bool) -> None:
    """`predictions.<name>` in the warehouse: the current layout's parquet files (a view over them
    on DuckDB, a table of their rows on PostgreSQL)."""
    warehouse.publish_parquet(PREDICTIONS, name, [dataset.path_for(k) for k in dataset.keys(partitioned=partitioned)])


def _recorded_sha256(context: AssetExecutionContext, model_name: str) -> str | None:
    """The artifact hash recorded in the model's latest materialization, if Dagster has one."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(model_name))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("artifact_sha256")
    return getattr(value, "value", None)


def build_predictions_asset(spec: FactorySpec, name: str, context: BuildContext) -> dg.AssetsDefinition:
    predictions: PredictionsSpec = spec.predictions[name]
    model: ModelSpec = spec.models[predictions.model]
    features = list(model_inputs(spec, model))
    slot = slot_of(spec, predictions.model)
    members = scoring_models(spec, name)
    gate = context.gates.get(name)
    partitions = spec.partitions[predictions.partitions] if predictions.partitions else None
    scores = (
        f"the latest {predictions.score.last_days} days"
        if predictions.score
        else f"each {predictions.partitions} partition"
    )

    @product_asset(
        spec,
        predictions,
        key=name,
        kinds={"scikitlearn", "polars", "parquet"},
        partitions=partitions,
        gate=gate,
        version=code_version(
            [predictions, *(spec.models[m] for m in members), *([spec.slots[slot]] if slot else [])],
            code=[build_predictions_asset, publish_view, *([score_rows] if slot else [])],
        ),
        deps=list(dict.fromkeys([*members, *(fs for m in members for fs in spec.models[m].features)])),
        # New data is scored as it arrives; a retrained model does not rewrite past predictions.
        automation=follow_upstream(ignore=dg.AssetSelection.assets(*members)),
        check_specs=monitor.drift_check_spec(name, model.monitor, partitions_def(partitions) if partitions else None),
        metadata={
            "factory/model": predictions.model,
            **({"factory/slot": slot} if slot else {}),
            "dagster/column_lineage": lineage_metadata(KIND.lineage(spec, name)),
            "factory/scores": scores,
        },
    )
    def _score(context: AssetExecutionContext, factory: FactoryResource):
        from factory_dagster.products.training import input_frame, score_frame

        home = factory.paths
        expected = {m: _recorded_sha256(context, m) for m in members}
        try:
            if slot is None:
                pipeline, version = model_registry(home, predictions.model).load(
                    expected_sha256=expected[predictions.model]
                )
                scorers = [Scorer(predictions.model, version, pipeline, CHAMPION)]
            else:
                scorers = slot_scorers(spec, home, slot, expected)
        except (FileNotFoundError, KeyError, ArtifactIntegrityError) as exc:
            raise dg.Failure(
                description=f"{name}: cannot load model {predictions.model}: {str(exc).strip(chr(39))}",
                allow_retries=False,
            ) from None
        champion = scorers[0]
        pipeline, version = champion.pipeline, champion.record
        scoring: ModelSpec = spec.models[champion.model]  # the champion's (a slot's members share the target)
        window = window_of(context, partitions) if partitions else None
        try:
            frame, entity, timestamp = model_frame(spec, scoring, home, window.keys if window else None)
        except FeatureDataError as exc:
            raise dg.Failure(description=f"{name}: {exc}", allow_retries=False) from None
        days = frame.get_column(timestamp).dt.date()
        if window is None:
            latest = days.max()
            assert predictions.score is not None and isinstance(latest, dt.date)
            first, last = latest - dt.timedelta(days=predictions.score.last_days - 1), latest
            frame = frame.filter(days >= first)
        else:
            first, last = window.first, window.last
        inputs = input_frame(frame, version.details["features"])
        values = score_frame(pipeline, scoring.task, inputs)
        scored_at = dt.datetime.now(dt.UTC)
        served = score_rows(
            frame.select(list(dict.fromkeys([*entity, timestamp]))), values, champion, scoring, scored_at
        )
        shadow = [
            _shadow_rows(spec, home, scorer, frame, entity, timestamp, window.keys if window else None, scored_at)
            for scorer in scorers[1:]
        ]
        columns = list(output_schema(spec, name))
        out = pl.concat([served.select(columns), *(rows.select(columns) for rows in shadow)])
        positive = (
            served.select(pl.col(PREDICTED).cast(pl.Float64).mean()).item() if PREDICTED in served.columns else None
        )

        def publish() -> dict[str, object]:
            dataset = predictions_dataset(home, name)
            extra: dict[str, object] = {}
            if window is None:
                uri = str(dataset.write(out))
            else:
                write_partitions(dataset, out, pl.col(timestamp).dt.date(), window)
                uri = str(dataset.directory)
                extra = partition_rows(served, pl.col(timestamp).dt.date(), window)  # the served rows
            publish_view(factory.warehouse, name, dataset, partitioned=window is not None)
            return {
                **table_metadata(out),
                **extra,
                "dagster/uri": uri,
                "model_version": version.version,
                **(
                    {
                        "slot": slot,
                        "champion": f"{champion.model}@{version.version}",
                        "challengers": ", ".join(f"{s.model}@{s.record.version}" for s in scorers[1:]) or "none",
                    }
                    if slot
                    else {}
                ),
                "scored_window": f"{first}..{last}",
                "features": ", ".join(features),
                **({"predicted_positive_rate": dg.MetadataValue.float(positive)} if positive is not None else {}),
                "preview": dg.MetadataValue.md(frame_markdown(out.head(10))),
            }

        published = False
        for event in audit_then_publish(
            context, home, gate, out, publish, parameters=window.parameters() if window else None
        ):
            published = published or isinstance(event, dg.MaterializeResult)
            yield event
        drift = model.monitor.drift  # what the drift check spec declares (the champion is judged)
        if drift.enabled and not published:  # a check spec must have its result, or the step fails on that
            yield monitor.unpublished_result(version.version)
        elif drift.enabled:
            try:
                reference = monitor.load_reference(model_registry(home, champion.model), version)
            except (ArtifactIntegrityError, OSError) as exc:
                yield monitor.unreadable_reference_result(version.version, str(exc))
                return
            if reference is None:
                yield monitor.missing_reference_result(drift, version.version)
                return
            current = inputs.with_columns(pl.Series(SCORE, values, dtype=pl.Float64))
            names = window.keys if window else [f"{first}..{last}"]
            batches = days.cast(pl.String) if window else pl.Series([names[0]] * frame.height)
            drifts = monitor.evaluate(drift, reference, current, batches, names)
            reports = monitor.write_reports(home, spec.name, name, drifts)
            yield monitor.drift_check_result(drift, version.version, drifts, reports)

    return _score


def score_rows(
    keys: pl.DataFrame, values: np.ndarray, scorer: Scorer, model: ModelSpec, scored_at: dt.datetime
) -> pl.DataFrame:
    """The scored rows `keys` with their scores, the decision, and which model version scored
    them in which role."""
    out = keys.with_columns(
        pl.Series(SCORE, values, dtype=pl.Float64),
        pl.lit(scorer.model).alias("model_name"),
        pl.lit(scorer.record.version).alias("model_version"),
        pl.lit(scorer.role).alias(ROLE),
        pl.lit(scored_at).alias("scored_at"),
    )
    if model.task == "classification":
        out = out.with_columns((pl.col(SCORE) >= model.threshold).alias(PREDICTED))
    return out


def _shadow_rows(
    spec: FactorySpec,
    home: FactoryHome,
    scorer: Scorer,
    served: pl.DataFrame,
    entity: list[str],
    timestamp: str,
    keys: list[str] | None,
    scored_at: dt.datetime,
) -> pl.DataFrame:
    """A challenger's scores of the rows the champion scored (those its own features cover)."""
    from factory_dagster.products.training import input_frame, score_frame

    model: ModelSpec = spec.models[scorer.model]
    row_key = list(dict.fromkeys([*entity, timestamp]))
    frame = served
    if any(c not in served.columns for c in scorer.record.details["features"]):
        own, own_entity, own_time = model_frame(spec, model, home, keys)
        renamed = dict(zip([*own_entity, own_time], row_key, strict=False))
        frame = served.select(row_key).join(own.rename(renamed), on=row_key, how="inner")
    values = score_frame(scorer.pipeline, model.task, input_frame(frame, scorer.record.details["features"]))
    return score_rows(frame.select(row_key), values, scorer, model, scored_at)
