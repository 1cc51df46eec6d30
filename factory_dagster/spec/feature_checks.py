"""Checks of a feature set at load: names exist, operands have a kind the block can use, and no
kept feature carries a label of its own row (target leakage)."""

from __future__ import annotations

from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.features import FeatureSpec
from factory_dagster.spec.kinds import Kind, kind_of_value
from factory_dagster.spec.line import FactorySpec

TEMPORAL = ("date", "timestamp")
CAST_KINDS: dict[str, Kind] = {"int": "numeric", "float": "numeric", "string": "string", "bool": "bool"}
WINDOWED = ("rolling", "lag")  # they read strictly earlier days only


def _requirement(feature: FeatureSpec, kinds: dict[str, Kind], dimension_kinds: dict[str, Kind] | None
                 ) -> tuple[Kind, str | None]:
    """The kind a feature produces, and why its operands do not fit (None when they do)."""
    kind, block = feature.kind, feature.block
    of = {operand: kinds.get(operand, "unknown") for operand in feature.operands()}

    def need(operands: list[str], allowed: tuple[str, ...], what: str) -> str | None:
        for operand in operands:
            if of[operand] not in (*allowed, "unknown"):
                return f"'{operand}' is {of[operand]}: {kind} needs {what}"
        return None

    if kind == "column":
        return of[block], None
    if kind == "cast":
        bad = of[block.column] in TEMPORAL and block.to == "bool"
        return CAST_KINDS[block.to], (f"'{block.column}' is {of[block.column]}: it cannot become bool" if bad else None)
    if kind == "date_part":
        allowed = ("timestamp",) if block.part in ("hour", "minute") else TEMPORAL
        return "numeric", need([block.column], allowed, "a timestamp" if len(allowed) == 1 else "a date or timestamp")
    if kind == "bucket":
        if block.labels is not None and len(set(block.labels)) != len(block.labels):
            return "string", "labels must be distinct"
        return ("string" if block.labels else "numeric"), need([block.column], ("numeric",), "a number")
    if kind in ("ratio", "difference"):
        return "numeric", need(block.operands(), ("numeric",), "numbers")
    if kind == "compare":
        value_kind = kind_of_value(block.value)
        column_kind = of[block.column]
        if column_kind not in ("unknown", value_kind) and not (column_kind in TEMPORAL and value_kind == "string"):
            return "bool", f"'{block.column}' is {column_kind} but the value {block.value!r} is {value_kind}"
        return "bool", None
    if kind in WINDOWED:
        return "numeric", need([block.value], ("numeric", "bool"), "a number or a boolean")
    # lookup
    if block.column == block.dimension_key:
        return "unknown", f"column and dimension_key are both '{block.column}': take another column"
    result: Kind = (dimension_kinds or {}).get(block.column, "unknown")
    key_kind = of[block.key]
    dim_key_kind = (dimension_kinds or {}).get(block.dimension_key, "unknown")
    if "unknown" not in (key_kind, dim_key_kind) and key_kind != dim_key_kind:
        return result, f"'{block.key}' is {key_kind} but {block.dimension}.{block.dimension_key} is {dim_key_kind}"
    return result, None


def check_feature_set(spec: FactorySpec, name: str, errors: list[SpecError]) -> None:
    fs = spec.feature_sets[name]
    products = spec.data_products()

    def fail(path: tuple, reason: str, at: tuple = ()) -> None:
        errors.append(spec.error("feature_sets", name, path, reason, at))

    if fs.source not in products:
        fail(("source",), f"unknown data product '{fs.source}' (known: {known(products)})")
        return
    columns = products[fs.source]
    kinds: dict[str, Kind] = dict(spec.product_kinds(fs.source) or {})
    for key in ("entity", "timestamp"):
        value = getattr(fs, key)
        if columns is not None and value not in columns:
            fail((key,), f"'{value}' is not a column of {fs.source} (columns: {known(columns)})")
    if kinds.get(fs.timestamp, "unknown") not in (*TEMPORAL, "unknown"):
        fail(("timestamp",), f"'{fs.timestamp}' is {kinds[fs.timestamp]}, not a date or timestamp")
    for index, label in enumerate(fs.labels):
        if columns is not None and label not in columns:
            fail(("labels", index), f"'{label}' is not a column of {fs.source} (columns: {known(columns)})")
    if not fs.output_features():
        fail(("features",), "every feature is keep: false: the feature set would output no feature")
    carried: dict[str, set[str]] = {label: {label} for label in fs.labels}  # same-row labels behind a name
    defined: list[str] = []
    for feature_name, feature in fs.features.items():
        where = ("features", feature_name, feature.kind)
        if feature_name in (fs.entity, fs.timestamp, *fs.labels):
            fail(("features", feature_name), f"feature '{feature_name}' clashes with the entity, timestamp or a label")
        missing = [o for o in feature.operands() if o not in defined and columns is not None and o not in columns]
        for operand in missing:
            fail(where, f"unknown column or feature '{operand}' (columns of {fs.source}: {known(columns or [])}; "
                        f"features declared before: {known(defined)})")
        dimension_kinds = None
        if feature.lookup is not None:
            lookup = feature.lookup
            if lookup.dimension not in products:
                fail((*where, "dimension"), f"unknown data product '{lookup.dimension}' (known: {known(products)})")
                missing = ["dimension"]
            else:
                dim_columns = products[lookup.dimension]
                dimension_kinds = spec.product_kinds(lookup.dimension)
                for key in ("dimension_key", "column"):
                    value = getattr(lookup, key)
                    if dim_columns is not None and value not in dim_columns:
                        fail((*where, key), f"'{value}' is not a column of {lookup.dimension} "
                                            f"(columns: {known(dim_columns)})")
                        missing = [key]
        if not missing:
            kinds[feature_name], problem = _requirement(feature, kinds, dimension_kinds)
            if problem:
                fail(where, problem)
        leaked = set() if feature.kind in WINDOWED else set().union(*(carried.get(o, set()) for o in feature.operands()))
        carried[feature_name] = leaked
        if feature.keep and leaked:
            fail(("features", feature_name),
                 f"feature '{feature_name}' is computed from the label {', '.join(sorted(leaked))} of its own row: "
                 "it leaks the target (use it through rolling or lag, or set keep: false)")
        defined.append(feature_name)
