"""`factory lineage`: what feeds a column (or an asset), or what a column feeds."""

from __future__ import annotations

import argparse
import difflib
import json

from rich.tree import Tree

from factory_dagster.cli.common import console, fail, load
from factory_dagster.execution.instance import factory_instance
from factory_dagster.lineage.columns import ColumnGraph, resolve_target
from factory_dagster.lineage.graph import build_graph


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("lineage", help="column lineage: what feeds ASSET[.COLUMN], or what it feeds")
    parser.add_argument("target", help="an asset or asset.column, e.g. my_model or raw/events.user_id")
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--upstream", action="store_true", help="what feeds it (default)")
    direction.add_argument("--downstream", action="store_true", help="what it feeds: what breaks if it changes")
    parser.add_argument("--format", choices=("tree", "json"), default="tree")
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    instance = factory_instance(loaded.home)
    graphs = [build_graph(spec, loaded.defs, instance) for spec in loaded.specs]  # lines share no asset
    for graph in graphs:
        try:
            asset, column = resolve_target(graph, args.target)
            break
        except KeyError:
            continue
    else:
        names = [n for g in graphs for n in g.nodes]
        asset_part = args.target.rsplit(".", 1)[0] if "." in args.target else args.target
        close = difflib.get_close_matches(asset_part, names, n=3, cutoff=0.5)
        fail(
            f"no asset named {args.target!r}"
            + (f" (did you mean {', '.join(close)}?)" if close else f" (assets: {', '.join(sorted(names)[:8])}, ...)")
        )
    columns = ColumnGraph.of(graph)
    node = graph.nodes[asset]
    start_columns = [column] if column else (list(node.column_lineage) or node.columns)
    if column and node.columns and column not in node.columns and (asset, column) not in columns.downstream_of:
        fail(f"{asset} has no column {column!r} (columns: {', '.join(node.columns)})")
    downstream = bool(args.downstream)
    reached = columns.trace([(asset, c) for c in start_columns], downstream=downstream)
    if args.format == "json":
        console.print_json(
            json.dumps(
                {
                    "target": {"asset": asset, "column": column},
                    "direction": "downstream" if downstream else "upstream",
                    "columns": [{"asset": a, "column": c, "distance": d} for (a, c), d in reached],
                }
            )
        )
        return 0
    label = f"{asset}.{column}" if column else asset
    tree = Tree(f"[bold]{label}[/] — {'what it feeds' if downstream else 'what feeds it'}")
    by_asset: dict[str, list[str]] = {}
    for (a, c), _ in reached:
        by_asset.setdefault(a, []).append(c)
    for a, cols in by_asset.items():
        tree.add(f"{a} [dim]({graph.nodes[a].role if a in graph.nodes else 'external'})[/]: {', '.join(sorted(cols))}")
    console.print(tree)
    if not reached:
        unknown = [k for k in graph.nodes if not columns.known(k) and graph.nodes[k].role == "data_product"]
        hint = f" (no recorded column lineage for {', '.join(unknown)}: run factory build)" if unknown else ""
        console.print(f"nothing {'downstream' if downstream else 'upstream'}{hint}")
    return 0
