"""What every product kind's module shares: the asset arguments every product carries, its code
version, and its column lineage as Dagster metadata."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import BaseModel

from factory_dagster.automation.conditions import freshness_policy
from factory_dagster.automation.partitions import partitions_def
from factory_dagster.gates.gate import Gate
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.product import ProductKind, ProductSpec
from factory_dagster.spec.time import PartitionsSpec
from factory_dagster.storage.home import FactoryHome

LINE_TAG = "factory/line"  # on every asset of a line: which line declared it
ColumnDeps = dict[str, list[tuple[str, str]]]  # column → [(upstream asset key, upstream column)]


@dataclass
class BuildContext:
    """What a kind's builder gets besides the spec: the line's gates and partitioned products."""

    gates: dict[str, Gate] = field(default_factory=dict)  # by asset key
    partitioned: dict[str, str] = field(default_factory=dict)  # product name → its partitions' name


class BuildableKind(ProductKind):
    """A product kind that also builds its Dagster assets (and says where its columns come from)."""

    def stored(self, spec: FactorySpec, name: str, home: FactoryHome) -> bool | None:
        """Whether `home` holds the product's output, for a kind that keeps it outside the
        warehouse (a warehouse product is told by its relation); None when the kind cannot tell."""
        return None

    def lineage(self, spec: FactorySpec, name: str) -> ColumnDeps:
        """Each output column's upstream (asset key, column) pairs; empty when not declared."""
        return {}

    def build(
        self, spec: FactorySpec, names: list[str], context: BuildContext
    ) -> list[dg.AssetsDefinition | dg.AssetChecksDefinition]:
        raise NotImplementedError

    def pool(self, spec: FactorySpec, name: str) -> str | None:
        """The concurrency pool (`line_pool`) of a product whose step must not run twice at once
        across runs and workers; None (the default) when it may."""
        return None


def code_version(entries: Iterable[BaseModel | str], code: Iterable[object] = ()) -> str:
    """A code version that changes exactly when what computes the product changes: the spec
    entries it is built from, and the source of the code (functions, classes, modules, or a
    module's file, to hash it without importing it) that computes it."""
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(entry.encode() if isinstance(entry, str) else entry.model_dump_json().encode())
    for obj in code:
        digest.update(obj.read_bytes() if isinstance(obj, Path) else inspect.getsource(obj).encode())  # type: ignore[arg-type]
    return digest.hexdigest()[:16]


def line_pool(spec: FactorySpec, *resource: str) -> str:
    """The Dagster concurrency pool of a resource of the line that takes one step at a time across
    runs and workers (the production instance gives every pool one slot): `<line>/<resource>`."""
    return "/".join([spec.name, *resource])


def exclusive_pool(spec: FactorySpec, key: dg.AssetKey | str) -> str | None:
    """The pool its kind puts a product's step in (`BuildableKind.pool`), else None."""
    found = spec.product_of_key(key.to_user_string() if isinstance(key, dg.AssetKey) else key)
    if found is None:
        return None
    kind, name = found
    return kind.pool(spec, name) if isinstance(kind, BuildableKind) else None


def product_asset(
    spec: FactorySpec,
    product: ProductSpec,
    *,
    key: dg.AssetKey | str,
    kinds: set[str],
    version: str,
    partitions: PartitionsSpec | None = None,
    gate: Gate | None = None,
    deps: Sequence[dg.AssetKey | dg.AssetDep | str] | None = None,
    automation: dg.AutomationCondition | None = None,
    check_specs: Sequence[dg.AssetCheckSpec] = (),
    output_required: bool | None = None,
    metadata: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`@dg.asset` with the arguments every product carries: key, owner, description, group (the
    line's by default), tags (the line's among them), code version, partitions with a single-run
    backfill policy, freshness, automation, its gate as a blocking check, metadata, and the pool of
    an exclusive kind."""
    checks = [*([gate.check_spec()] if gate else []), *check_specs]
    return dg.asset(
        **{
            "key": key,
            "deps": deps,
            "group_name": product.group or spec.name,
            "owners": [product.owner],
            "description": product.description,
            "kinds": kinds,
            "tags": {**product.tags, LINE_TAG: spec.name},
            "code_version": version,
            "partitions_def": partitions_def(partitions) if partitions else None,
            "backfill_policy": dg.BackfillPolicy.single_run() if partitions else None,
            "freshness_policy": freshness_policy(product.freshness),
            "automation_condition": automation,
            "check_specs": checks or None,
            "output_required": gate is None if output_required is None else output_required,
            "metadata": metadata or {},
            "pool": exclusive_pool(spec, key),
        }
    )


def lineage_metadata(lineage: ColumnDeps) -> dg.TableColumnLineage:
    """Column lineage as Dagster's `dagster/column_lineage` metadata."""
    return dg.TableColumnLineage(
        deps_by_column={
            column: [
                dg.TableColumnDep(asset_key=dg.AssetKey.from_user_string(asset), column_name=upstream)
                for asset, upstream in deps
            ]
            for column, deps in lineage.items()
        }
    )
