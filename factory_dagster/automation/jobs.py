"""Jobs declared in the spec: an asset selection, optionally narrowed to one partitioning."""

from __future__ import annotations

import dagster as dg
from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

from factory_dagster.automation.partitions import partitions_def
from factory_dagster.spec import FactorySpec, SpecError


def job_selection(spec: FactorySpec, name: str, assets: list[dg.AssetsDefinition]) -> dg.AssetSelection:
    job = spec.jobs[name]
    selection = dg.AssetSelection.from_string(job.select)
    if job.partitions is None:
        return selection
    wanted = partitions_def(spec.partitions[job.partitions])
    same = [key for a in assets if a.partitions_def == wanted for key in a.keys]
    return selection & dg.AssetSelection.assets(*same)


def build_jobs(spec: FactorySpec, assets: list[dg.AssetsDefinition]) -> dict[str, dg.UnresolvedAssetJobDefinition]:
    jobs = {}
    graph = AssetGraph.from_assets(assets)
    for name, job in spec.jobs.items():
        selection = job_selection(spec, name, assets)
        if not selection.resolve(graph, allow_missing=True):
            doc = spec.documents.get(("jobs", name))
            raise SpecError(doc.path if doc else None, f"jobs.{name}.select",
                            f"{job.select!r} selects no asset" + (f" partitioned by '{job.partitions}'"
                                                                  if job.partitions else ""))
        jobs[name] = dg.define_asset_job(
            name, selection=selection, description=job.description,
            partitions_def=partitions_def(spec.partitions[job.partitions]) if job.partitions else None,
            tags={"factory/job": name},
        )
    return jobs
