"""Column-level lineage across the whole line: raw columns → dbt → features → model → predictions.

dbt models carry the lineage dagster-dbt derives from their compiled SQL at materialization;
feature sets, models and predictions carry the lineage of their spec. This joins them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from factory_dagster.lineage.graph import FactoryGraph

Column = tuple[str, str]  # (asset key, column)


@dataclass
class ColumnGraph:
    upstream_of: dict[Column, set[Column]] = field(default_factory=dict)
    downstream_of: dict[Column, set[Column]] = field(default_factory=dict)

    @classmethod
    def of(cls, graph: FactoryGraph) -> ColumnGraph:
        columns = cls()
        for node in graph.nodes.values():
            for column, deps in node.column_lineage.items():
                for dep in deps:
                    columns.upstream_of.setdefault((node.key, column), set()).add(dep)
                    columns.downstream_of.setdefault(dep, set()).add((node.key, column))
        return columns

    def trace(self, start: list[Column], downstream: bool) -> list[tuple[Column, int]]:
        """Every column reached from `start`, with its distance, nearest first."""
        edges = self.downstream_of if downstream else self.upstream_of
        seen: dict[Column, int] = {}
        queue = deque((column, 0) for column in start)
        while queue:
            column, distance = queue.popleft()
            for nxt in sorted(edges.get(column, ())):
                if nxt not in seen and nxt not in start:
                    seen[nxt] = distance + 1
                    queue.append((nxt, distance + 1))
        return sorted(seen.items(), key=lambda item: (item[1], item[0]))

    def reaches(self, column: Column, targets: set[str]) -> bool:
        """Whether a column feeds any column of the target assets."""
        return any(asset in targets for (asset, _), _ in self.trace([column], downstream=True))

    def known(self, asset: str) -> bool:
        return any(a == asset for a, _ in self.upstream_of)


def resolve_target(graph: FactoryGraph, text: str) -> tuple[str, str | None]:
    """`fct_flights`, `fct_flights.origin`, `raw/weather.visib` or `weather.visib` → (asset, column)."""
    candidates: list[tuple[str, str | None]] = [(text, None)]
    if "." in text:
        asset, column = text.rsplit(".", 1)
        candidates.insert(0, (asset, column))
    for asset, column in candidates:
        for key in dict.fromkeys((asset, graph.spec.key_of(asset))):
            if key in graph.nodes:
                return key, column
    raise KeyError(text)
