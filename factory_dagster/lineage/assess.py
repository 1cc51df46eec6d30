"""One call for everything lineage tells: the graph, its debt, each model's ML Test Score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from factory_dagster.gates.suites import Suite
from factory_dagster.lineage.debt import DebtReport, evaluate
from factory_dagster.lineage.graph import FactoryGraph, build_graph
from factory_dagster.lineage.ml_test_score import ModelScore, score_all
from factory_dagster.spec import FactorySpec


@dataclass
class Assessment:
    graph: FactoryGraph
    debt: DebtReport
    scores: list[ModelScore]


def assess(
    spec: FactorySpec, assets: dg.Definitions | Any, instance: dg.DagsterInstance | None, suites: dict[str, Suite]
) -> Assessment:
    graph = build_graph(spec, assets, instance, suites)
    return Assessment(graph, evaluate(graph), score_all(graph))
