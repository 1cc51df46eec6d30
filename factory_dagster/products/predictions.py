"""Predictions assets: score the latest period with the served model, model version on every row."""

import datetime as dt

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from factory_dagster.automation.conditions import follow_upstream, freshness_policy
from factory_dagster.automation.partitions import partitions_def, window_of
from factory_dagster.gates.gate import Gate
from factory_dagster.gates.publish import audit_then_publish
from factory_dagster.products.catalog import PREDICTIONS_SCHEMA
from factory_dagster.products.column_lineage import as_metadata, predictions_lineage
from factory_dagster.products.feature_sets import write_partitions
from factory_dagster.products.metadata import (
    LINE_TAG,
    markdown_table,
    partition_rows,
    spec_version,
    table_metadata,
)
from factory_dagster.products.models import (
    FeatureDataError,
    model_features,
    model_frame,
    model_registry,
)
from factory_dagster.resources import FactoryResource
from factory_dagster.spec import FactorySpec
from factory_dagster.storage.artifacts import ArtifactIntegrityError
from factory_dagster.storage.datasets import Dataset
from factory_dagster.storage.home import FactoryHome
from factory_dagster.storage.warehouse import connect, quote

PREDICTIONS = PREDICTIONS_SCHEMA


def predictions_dataset(home: FactoryHome, name: str) -> Dataset:
    return Dataset(home.dataset_dir(PREDICTIONS, name))


def publish_view(home: FactoryHome, name: str, dataset: Dataset, partitioned: bool) -> None:
    """`predictions.<name>` in the warehouse: a view over the current layout's parquet files."""
    files = ", ".join("'" + str(dataset.path_for(k)).replace("'", "''") + "'"
                      for k in dataset.keys(partitioned=partitioned))
    with connect(home.warehouse) as con:
        con.execute(f"create schema if not exists {quote(PREDICTIONS)}")
        con.execute(f"create or replace view {quote(PREDICTIONS)}.{quote(name)} as "
                    f"select * from read_parquet([{files}], union_by_name = true)")


def _recorded_sha256(context: AssetExecutionContext, model_name: str) -> str | None:
    """The artifact hash recorded in the model's latest materialization, if Dagster has one."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(model_name))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get("artifact_sha256")
    return getattr(value, "value", None)


def build_predictions_asset(spec: FactorySpec, name: str, gate: Gate | None = None) -> dg.AssetsDefinition:
    predictions = spec.predictions[name]
    model = spec.models[predictions.model]
    features = model_features(spec, model)
    partitions = spec.partitions[predictions.partitions] if predictions.partitions else None

    @dg.asset(
        key=name,
        deps=[predictions.model, *model.features],
        group_name=predictions.group or spec.name,
        owners=[predictions.owner],
        description=predictions.description,
        kinds={"scikitlearn", "polars", "parquet"},
        tags={**predictions.tags, LINE_TAG: spec.name},
        code_version=spec_version(predictions, model),
        partitions_def=partitions_def(partitions) if partitions else None,
        backfill_policy=dg.BackfillPolicy.single_run() if partitions else None,
        # New data is scored as it arrives; a retrained model does not rewrite past predictions.
        automation_condition=follow_upstream(ignore=dg.AssetSelection.assets(predictions.model)),
        freshness_policy=freshness_policy(predictions.freshness),
        check_specs=[gate.check_spec()] if gate else None,
        output_required=gate is None,
        metadata={"factory/model": predictions.model,
                  "dagster/column_lineage": as_metadata(predictions_lineage(spec, name)),
                  "factory/scores": (f"the latest {predictions.score.last_days} days" if predictions.score
                                     else f"each {predictions.partitions} partition")},
    )
    def _score(context: AssetExecutionContext, factory: FactoryResource):
        from factory_dagster.products.training import model_inputs, score_frame

        home = factory.paths
        try:
            pipeline, version = model_registry(home, predictions.model).load(
                expected_sha256=_recorded_sha256(context, predictions.model))
        except (FileNotFoundError, ArtifactIntegrityError) as exc:
            raise dg.Failure(description=f"{name}: cannot load model {predictions.model}: {exc}",
                             allow_retries=False) from None
        window = window_of(context, partitions) if partitions else None
        try:
            frame, entity, timestamp = model_frame(spec, model, home, window.keys if window else None)
        except FeatureDataError as exc:
            raise dg.Failure(description=f"{name}: {exc}", allow_retries=False) from None
        days = frame.get_column(timestamp).dt.date()
        if window is None:
            first, last = days.max() - dt.timedelta(days=predictions.score.last_days - 1), days.max()
            frame = frame.filter(days >= first)
        else:
            first, last = window.first, window.last
        scores = score_frame(pipeline, model.task, model_inputs(frame, version.details["features"]))
        out = frame.select(entity, timestamp).with_columns(
            pl.Series("score", scores, dtype=pl.Float64),
            pl.lit(predictions.model).alias("model_name"),
            pl.lit(version.version).alias("model_version"),
            pl.lit(dt.datetime.now(dt.UTC)).alias("scored_at"),
        )
        if model.task == "classification":
            out = out.with_columns((pl.col("score") >= model.threshold).alias("predicted"))
        positive = float(out.get_column("predicted").mean()) if "predicted" in out.columns else None

        def publish() -> dict[str, object]:
            dataset = predictions_dataset(home, name)
            extra: dict[str, object] = {}
            if window is None:
                uri = str(dataset.write(out))
            else:
                write_partitions(dataset, out, pl.col(timestamp).dt.date(), window)
                uri = str(dataset.directory)
                extra = partition_rows(out, pl.col(timestamp).dt.date(), window)
            publish_view(home, name, dataset, partitioned=window is not None)
            return {
                **table_metadata(out),
                **extra,
                "dagster/uri": uri,
                "model_version": version.version,
                "scored_window": f"{first}..{last}",
                "features": ", ".join(features),
                **({"predicted_positive_rate": dg.MetadataValue.float(positive)} if positive is not None else {}),
                "preview": dg.MetadataValue.md(markdown_table(out.head(10))),
            }

        yield from audit_then_publish(context, home, gate, out, publish,
                                      parameters=window.parameters() if window else None)

    return _score

