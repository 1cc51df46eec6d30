"""Jobs declared in the spec: an asset selection, optionally narrowed to one partitioning."""

from __future__ import annotations

import dagster as dg

from factory_dagster.automation.partitions import partitions_def
from factory_dagster.compat import AssetGraph
from factory_dagster.spec import FactorySpec


def checked_selection(
    spec: FactorySpec, section: str, name: str, select: str, partitions: str | None, graph: AssetGraph
) -> dg.AssetSelection:
    """`select` (narrowed to assets partitioned by `partitions`), refused if it selects nothing:
    a job or schedule with a misspelt selection would otherwise run nothing, every day, silently."""
    selection = dg.AssetSelection.from_string(select)
    if partitions is not None:
        same = graph.asset_keys_for_partitions_def(partitions_def(spec.partitions[partitions]))
        selection = selection & dg.AssetSelection.assets(*same)
    if not selection.resolve(graph, allow_missing=True):
        raise spec.error(
            section,
            name,
            ("select",),
            f"{select!r} selects no asset" + (f" partitioned by '{partitions}'" if partitions else ""),
        )
    return selection


def build_jobs(spec: FactorySpec, graph: AssetGraph) -> dict[str, dg.UnresolvedAssetJobDefinition]:
    jobs = {}
    for name, job in spec.jobs.items():
        selection = checked_selection(spec, "jobs", name, job.select, job.partitions, graph)
        jobs[name] = dg.define_asset_job(
            name,
            selection=selection,
            description=job.description,
            partitions_def=partitions_def(spec.partitions[job.partitions]) if job.partitions else None,
            tags={"factory/job": name},
        )
    return jobs
