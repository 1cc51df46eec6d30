"""The code location: `dagster dev -w workspace.yaml` and `factory` load this module.

`defs` serves every line the factory is configured to serve (factory.yaml, or $FACTORY_LINES);
`line_<name>` serves one line, for a team that prefers one code location per line (see
workspace.yaml). Each is built when first asked for. `factory_job` is the code pointer a Celery
worker rebuilds a `factory` run's job from (production profile).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import dagster as dg

from factory_dagster.factory import build_definitions


@cache
def _build(line: str | None) -> dg.Definitions:
    return build_definitions(line)


def __getattr__(name: str) -> dg.Definitions:
    if name == "defs":
        return _build(None)
    if name.startswith("line_"):
        return _build(name.removeprefix("line_"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The job a production run executes: Dagster reserves the implicit asset job's name for itself.
RUN_JOB = "factory_run"


def factory_job(root: str, lines: Sequence[str], home: str, keys: Sequence[str]) -> dg.JobDefinition:
    """The job materializing `keys` (and their checks) of `lines` under `root`, writing into
    `home`: built from the same definitions `factory` loaded."""
    defs = build_definitions(list(lines) or None, root=root, home=home)
    selection = dg.AssetSelection.assets(*(dg.AssetKey.from_user_string(key) for key in keys))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job(RUN_JOB, selection)])).resolve_job_def(
        RUN_JOB
    )


def reconstructable_job(root: str, lines: Sequence[str], home: str, keys: Sequence[str]) -> dg.ReconstructableJob:
    """`factory_job`'s pointer: what a worker in another process (or machine) rebuilds."""
    return dg.build_reconstructable_job(
        __name__,
        factory_job.__name__,
        reconstructable_kwargs={"root": root, "lines": list(lines), "home": home, "keys": list(keys)},
    )
