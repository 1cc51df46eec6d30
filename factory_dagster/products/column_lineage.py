"""Column lineage of what the factory computes from the spec: features, model inputs, scores.

dbt models get theirs from dagster-dbt (sqlglot over the compiled SQL, at materialization).
Here each output column names the upstream (asset, column) pairs it is computed from.
"""

from __future__ import annotations

import dagster as dg

from factory_dagster.products.catalog import product_key
from factory_dagster.spec import FactorySpec

ColumnDeps = dict[str, list[tuple[str, str]]]  # column → [(upstream asset key, upstream column)]


def feature_set_lineage(spec: FactorySpec, name: str) -> ColumnDeps:
    fs = spec.feature_sets[name]
    source = product_key(spec, fs.source).to_user_string()
    resolved: ColumnDeps = {}

    def operand(column: str) -> list[tuple[str, str]]:
        return resolved[column] if column in resolved else [(source, column)]

    for feature_name, feature in fs.features.items():
        deps: list[tuple[str, str]] = []
        for column in feature.operands():
            deps += operand(column)
        if feature.lookup is not None:
            deps.append((product_key(spec, feature.lookup.dimension).to_user_string(), feature.lookup.column))
            deps.append((product_key(spec, feature.lookup.dimension).to_user_string(), feature.lookup.dimension_key))
        resolved[feature_name] = list(dict.fromkeys(deps))
    lineage: ColumnDeps = {c: [(source, c)] for c in (fs.entity, fs.timestamp, *fs.labels)}
    lineage.update({f: resolved[f] for f in fs.output_features()})
    return lineage


def model_lineage(spec: FactorySpec, name: str) -> ColumnDeps:
    """A model's columns are its inputs: each comes from a feature set column of the same name."""
    model = spec.models[name]
    lineage: ColumnDeps = {}
    for fs_name, selection in model.features.items():
        columns = spec.feature_sets[fs_name].output_features() if selection == "all" else selection
        lineage.update({c: [(fs_name, c)] for c in columns})
    return lineage


def predictions_lineage(spec: FactorySpec, name: str) -> ColumnDeps:
    predictions = spec.predictions[name]
    model = spec.models[predictions.model]
    first = next(iter(model.features))
    fs = spec.feature_sets[first]
    score = [(predictions.model, c) for c in model_lineage(spec, predictions.model)]
    lineage: ColumnDeps = {fs.entity: [(first, fs.entity)], fs.timestamp: [(first, fs.timestamp)], "score": score}
    if model.task == "classification":
        lineage["predicted"] = score
    return lineage


def as_metadata(lineage: ColumnDeps) -> dg.TableColumnLineage:
    return dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=dg.AssetKey.from_user_string(asset), column_name=upstream)
                 for asset, upstream in deps]
        for column, deps in lineage.items()
    })
