"""Cross-reference checks: every name a spec entry uses must exist, with the known ones listed."""

from __future__ import annotations

from pydantic import ValidationError

from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.estimators import ESTIMATORS
from factory_dagster.spec.feature_checks import check_feature_set
from factory_dagster.spec.kinds import kind_of_value
from factory_dagster.spec.line import FactorySpec
from factory_dagster.spec.models import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
)
from factory_dagster.spec.pydantic_errors import explain


def _check_unique_keys(spec: FactorySpec, errors: list[SpecError]) -> None:
    # Feature sets, models, predictions and dbt models share one asset-key namespace.
    owners: dict[str, str] = {name: "dbt model" for name in spec.dbt_models}
    for section, entries in (("feature_sets", spec.feature_sets), ("models", spec.models),
                             ("predictions", spec.predictions)):
        for name in entries:
            if name in owners:
                errors.append(spec.error(section, name, (),
                                         f"duplicate key '{name}': already used by a {owners[name]}"))
            owners[name] = section.rstrip("s").replace("_", " ")


def _check_model(spec: FactorySpec, name: str, errors: list[SpecError]) -> None:
    model = spec.models[name]
    before = len(errors)
    labels: dict[str, str] = {}
    provided: dict[str, str] = {}  # input → the feature set it comes from
    for fs_name, selection in model.features.items():
        if fs_name not in spec.feature_sets:
            errors.append(spec.error("models", name, ("features",),
                                     f"unknown feature set '{fs_name}' (known: {known(spec.feature_sets)})",
                                     at=(fs_name,)))
            continue
        fs = spec.feature_sets[fs_name]
        available = fs.output_features()
        if selection != "all" and not selection:
            errors.append(spec.error("models", name, ("features", fs_name), "select at least one feature (or all)"))
        for feature in (available if selection == "all" else selection):
            if feature in provided and provided[feature] != fs_name:
                errors.append(spec.error("models", name, ("features", fs_name),
                                         f"input '{feature}' comes from both {provided[feature]} and {fs_name}"))
            elif feature in provided:
                errors.append(spec.error("models", name, ("features", fs_name), f"'{feature}' is selected twice"))
            provided[feature] = fs_name
        if selection != "all":
            for index, feature in enumerate(selection):
                if feature not in available:
                    hint = (" (it is a label, not a feature)" if feature in fs.labels else
                            " (it is declared with keep: false)" if feature in fs.features else "")
                    errors.append(spec.error("models", name, ("features", fs_name, index),
                                             f"feature set '{fs_name}' has no feature '{feature}'{hint} "
                                             f"(features: {known(available)})"))
        for label in fs.labels:
            labels.setdefault(label, fs_name)
    if len(errors) > before:
        return
    if model.target.column not in labels:
        errors.append(spec.error("models", name, ("target", "column"),
                                 f"'{model.target.column}' is not a label of the model's feature sets "
                                 f"(labels: {known(labels)})"))
    else:
        source = spec.feature_sets[labels[model.target.column]].source
        label_kind = (spec.product_kinds(source) or {}).get(model.target.column, "unknown")
        if model.target.op is not None and label_kind != "unknown" and \
                kind_of_value(model.target.value) not in (label_kind, "unknown"):
            errors.append(spec.error("models", name, ("target", "value"),
                                     f"the label '{model.target.column}' is {label_kind} but {model.target.value!r} "
                                     f"is {kind_of_value(model.target.value)}"))
        if model.target.op is None and label_kind not in ("numeric", "unknown"):
            errors.append(spec.error("models", name, ("target",), f"regression needs a numeric label; "
                                     f"'{model.target.column}' is {label_kind} (or give op and value)"))
    info = ESTIMATORS.get(model.estimator.name)
    if info is None:
        errors.append(spec.error("models", name, ("estimator", "name"),
                                 f"unknown estimator '{model.estimator.name}' (allowed: {known(ESTIMATORS, 20)})"))
        return
    if info.task != model.task:
        errors.append(spec.error("models", name, ("estimator", "name"),
                                 f"{model.estimator.name} is a {info.task} estimator but the target "
                                 f"defines a {model.task} task"))
    try:
        info.params.model_validate(model.estimator.params)
    except ValidationError as exc:
        for path, reason in explain(exc, info.params, model.estimator.params):
            errors.append(spec.error("models", name, ("estimator", "params", *path), reason))
    valid = CLASSIFICATION_METRICS if model.task == "classification" else REGRESSION_METRICS
    computed = model.metric_names()
    for index, metric in enumerate(model.metrics):
        if metric not in valid:
            errors.append(spec.error("models", name, ("metrics", index),
                                     f"'{metric}' is not a {model.task} metric (allowed: {', '.join(valid)})"))
    inputs = {f for fs_name, sel in model.features.items() if fs_name in spec.feature_sets
              for f in (spec.feature_sets[fs_name].output_features() if sel == "all" else sel)}
    for index, column in enumerate(model.slices):
        if column not in inputs:
            errors.append(spec.error("models", name, ("slices", index),
                                     f"'{column}' is not an input of the model (inputs: {known(inputs)})"))
    if model.promotion.slice_min and not model.slices:
        errors.append(spec.error("models", name, ("promotion", "slice_min"), "needs `slices:` to judge"))
    for metric in model.promotion.slice_min:
        if metric in LOWER_IS_BETTER:
            errors.append(spec.error("models", name, ("promotion", "slice_min"),
                                     f"{metric} is better when lower: slice_min takes metrics where higher is better"))
    promotion = model.promotion
    for key, metrics in (("min", promotion.min), ("max", promotion.max),
                         ("beat_baseline", promotion.beat_baseline), ("slice_min", promotion.slice_min)):
        for metric in metrics:
            if metric not in computed:
                errors.append(spec.error("models", name, ("promotion", key),
                                         f"'{metric}' is not among the model's metrics ({', '.join(computed)})"))


def _check_partitions_name(spec: FactorySpec, section: str, name: str, path: tuple, value: str | None,
                           errors: list[SpecError]) -> None:
    if value is not None and value not in spec.partitions:
        errors.append(spec.error(section, name, path, f"unknown partitions '{value}' (known: {known(spec.partitions)})"))


def _check_predictions(spec: FactorySpec, name: str, errors: list[SpecError]) -> None:
    predictions = spec.predictions[name]
    if predictions.model not in spec.models:
        errors.append(spec.error("predictions", name, ("model",),
                                 f"unknown model '{predictions.model}' (known: {known(spec.models)})"))
        return
    _check_partitions_name(spec, "predictions", name, ("partitions",), predictions.partitions, errors)
    if predictions.partitions is not None:
        for fs_name in spec.models[predictions.model].features:
            if fs_name in spec.feature_sets and spec.feature_sets[fs_name].partitions != predictions.partitions:
                errors.append(spec.error(
                    "predictions", name, ("partitions",),
                    f"scoring by '{predictions.partitions}' partitions needs the model's feature set "
                    f"'{fs_name}' partitioned the same way"))


def _check_time(spec: FactorySpec, errors: list[SpecError]) -> None:
    """Partitions, jobs, sensors and schedules refer to things that exist."""
    for name, source in spec.sources.items():
        if source.partition is not None:
            _check_partitions_name(spec, "sources", name, ("partition", "partitions"), source.partition.partitions,
                                   errors)
            column = source.partition.date_column
            if column is not None and source.columns.get(column) not in ("date", "timestamp"):
                errors.append(spec.error("sources", name, ("partition", "date_column"),
                                         f"'{column}' is {source.columns.get(column)}: a partition needs a date or "
                                         "timestamp column (or date_parts)"))
    for name, fs in spec.feature_sets.items():
        _check_partitions_name(spec, "feature_sets", name, ("partitions",), fs.partitions, errors)
    dbt = spec.line.dbt
    if dbt is not None and dbt.partitioned is not None and dbt.partitioned.partitions not in spec.partitions:
        errors.append(spec.error("line", "line", ("dbt", "partitioned", "partitions"),
                                 f"unknown partitions '{dbt.partitioned.partitions}' (known: {known(spec.partitions)})"))
    for name, job in spec.jobs.items():
        _check_partitions_name(spec, "jobs", name, ("partitions",), job.partitions, errors)
        try:
            import dagster as dg

            dg.AssetSelection.from_string(job.select)
        except Exception as exc:  # dagster raises several types for a selection it cannot parse
            errors.append(spec.error("jobs", name, ("select",), f"not a Dagster asset selection: {exc}"))
    for name, sensor in spec.sensors.items():
        source = spec.sources.get(sensor.source)
        if source is None:
            errors.append(spec.error("sensors", name, ("source",),
                                     f"unknown source '{sensor.source}' (known: {known(spec.sources)})"))
        elif source.landing is None:
            errors.append(spec.error("sensors", name, ("source",),
                                     f"source '{sensor.source}' has no landing folder to watch"))
        if sensor.job not in spec.jobs:
            errors.append(spec.error("sensors", name, ("job",), f"unknown job '{sensor.job}' (known: {known(spec.jobs)})"))
        elif source is not None and source.partition is not None and \
                spec.jobs[sensor.job].partitions != source.partition.partitions:
            errors.append(spec.error("sensors", name, ("job",),
                                     f"job '{sensor.job}' is not partitioned like source '{sensor.source}'"))
    for name, schedule in spec.schedules.items():
        if schedule.job is not None and schedule.job not in spec.jobs:
            errors.append(spec.error("schedules", name, ("job",),
                                     f"unknown job '{schedule.job}' (known: {known(spec.jobs)})"))
        if schedule.select is not None:
            try:
                import dagster as dg

                dg.AssetSelection.from_string(schedule.select)
            except Exception as exc:  # dagster raises several types for a selection it cannot parse
                errors.append(spec.error("schedules", name, ("select",), f"not a Dagster asset selection: {exc}"))


def check_references(spec: FactorySpec) -> list[SpecError]:
    errors: list[SpecError] = []
    _check_unique_keys(spec, errors)
    for name in spec.feature_sets:
        check_feature_set(spec, name, errors)
    for name in spec.models:
        _check_model(spec, name, errors)
    for name in spec.predictions:
        _check_predictions(spec, name, errors)
    _check_time(spec, errors)
    return errors
