"""Structural debt: jungles, cascades, entanglement, glue — read from the shape of the graph."""

from __future__ import annotations

from factory_dagster.lineage.columns import ColumnGraph
from factory_dagster.lineage.graph import PIPELINE_ROLES, FactoryGraph
from factory_dagster.lineage.rules import Finding, Rule, rule
from factory_dagster.spec.debt import DebtThresholds


@rule(
    "TD12",
    "Pipeline jungle",
    "medium",
    "Too deep, too many joins, too many leaf children, a source read twice, a mart on a raw source, "
    "or an upstream concept joined again.",
)
def pipeline_jungle(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    memo: dict[str, int] = {}
    nodes = [n for n in graph.of_role(*PIPELINE_ROLES)]
    for n in nodes:
        depth = graph.depth(n.key, memo)
        if depth > t.max_depth and all(graph.depth(c, memo) <= t.max_depth for c in n.parents):
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key} sits {depth} assets deep (max {t.max_depth})",
                    "collapse pass-through steps; split the chain into products",
                )
            )
        if len(n.parents) > t.max_fan_in:
            findings.append(
                r.finding(
                    [n.key],
                    f"{n.key} joins {len(n.parents)} inputs (max {t.max_fan_in})",
                    "join in an intermediate model per concept, then combine",
                )
            )
        leaves = sorted(c for c in n.children if c in graph.nodes and not graph.nodes[c].children)
        if len(leaves) > t.max_leaf_children:
            findings.append(
                r.finding(
                    [n.key, *leaves],
                    f"{n.key} has {len(leaves)} leaf children",
                    "build one shared product for the readers instead of one per reader",
                )
            )
        models = sorted(c for c in n.children if c in graph.nodes and graph.nodes[c].role == "data_product")
        if n.role == "source" and len(models) > t.max_source_fanout:
            findings.append(
                r.finding(
                    [n.key, *models],
                    f"raw source {n.key} is read directly by {len(models)} models ({', '.join(models)})",
                    "read a source through one staging model",
                )
            )
        if n.layer == "marts":
            raw = sorted(p for p in n.parents if p in graph.nodes and graph.nodes[p].role == "source")
            if raw:
                findings.append(
                    r.finding(
                        [n.key, *raw],
                        f"mart {n.key} reads raw {', '.join(raw)} directly",
                        "go through the staging model of the source",
                    )
                )
        for parent in sorted(n.parents) if n.role == "data_product" else ():  # SQL rejoins only
            if parent not in graph.nodes:
                continue
            for other in sorted(n.parents - {parent}):
                if other in graph.nodes and parent in graph.upstream(other) and graph.nodes[other].children == {n.key}:
                    findings.append(
                        r.finding(
                            [n.key, parent, other],
                            f"{n.key} reads {parent} both directly and through {other}, whose only reader it is",
                            f"fold {other} into {n.key}, or read {parent} only through it",
                        )
                    )
    return findings


@rule("TD02", "Correction cascade / feedback loop", "high", "A model's predictions flow into a model.")
def correction_cascade(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for model in graph.of_role("model"):
        fed = sorted(k for k in graph.upstream(model.key) if graph.nodes[k].role == "predictions")
        if fed:
            findings.append(
                r.finding(
                    [model.key, *fed],
                    f"{model.key} learns from predictions {', '.join(fed)}",
                    "train on observed outcomes; if a correction model is needed, version and monitor both together",
                )
            )
    return findings


@rule("TD01", "Entanglement (CACE)", "medium", "A model behind too many raw sources or with too many inputs.")
def entanglement(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for model in graph.of_role("model"):
        sources = sorted(k for k in graph.upstream(model.key) if graph.nodes[k].role == "source")
        features = [c for c in model.column_lineage]
        if len(sources) > t.max_root_sources or len(features) > t.max_features:
            radius = {s: len([m for m in graph.downstream(s) if graph.nodes[m].role == "model"]) for s in sources}
            findings.append(
                r.finding(
                    [model.key],
                    f"{model.key} depends on {len(sources)} raw sources (max {t.max_root_sources}) and "
                    f"{len(features)} inputs (max {t.max_features}); blast radius (models per source): {radius}",
                    "prune inputs that add nothing; isolate independent signals in separate models",
                )
            )
    return findings


@rule("TD11", "Glue code", "low", "A model (beyond staging) that only renames or casts the columns of one input.")
def glue_code(r: Rule, graph: FactoryGraph, columns: ColumnGraph, t: DebtThresholds) -> list[Finding]:
    findings = []
    for n in graph.of_role("data_product"):
        if n.layer in (None, "staging") or len(n.parents) != 1 or not n.column_lineage:
            continue
        (parent,) = n.parents
        deps = n.column_lineage
        # a column computed from nothing (a literal, count(*)) has no dependency: never one-to-one
        if not all(len(d) == 1 and d[0][0] == parent for d in deps.values()):
            continue
        distinct = len({d[0] for d in deps.values()}) == len(deps)
        if distinct and len(deps) == len(n.columns):
            findings.append(
                r.finding(
                    [n.key, parent],
                    f"every column of {n.key} is one column of {parent}",
                    f"let readers use {parent}, or give {n.key} logic of its own",
                )
            )
    return findings
