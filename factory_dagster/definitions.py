"""The code location: `dagster dev -w workspace.yaml` and `factory` load this module.

`defs` serves every line the factory is configured to serve (factory.yaml, or $FACTORY_LINES);
`line_<name>` serves one line, for a team that prefers one code location per line (see
workspace.yaml). Each is built when first asked for.
"""

from __future__ import annotations

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
