"""`factory list`: the assets of every line by group (a group per line), with kinds, owners and description."""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from typing import Any

from rich.markup import escape
from rich.table import Table

from factory_dagster.cli.common import console, load


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("list", help="show assets by group with kinds and owners")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    graph = loaded.defs.resolve_asset_graph()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for key in sorted(graph.materializable_asset_keys):
        node = graph.get(key)
        groups[node.group_name or "default"].append(
            {
                "asset": key.to_user_string(),
                "kinds": sorted(node.kinds),
                "owners": list(node.owners),
                "checks": len(node.check_keys),
                "partitioned": node.is_partitioned,
                "description": (node.description or "").strip().splitlines()[0] if node.description else "",
            }
        )
    if args.format == "json":
        console.print_json(json.dumps({"lines": [s.name for s in loaded.specs], "groups": groups}))
        return 0
    for group in sorted(groups):
        table = Table(title=f"group: {group}", title_justify="left")
        for column in ("asset", "kinds", "owners", "checks", "description"):
            table.add_column(column, overflow="fold")
        for row in groups[group]:
            table.add_row(
                *(escape(text) for text in (row["asset"], ", ".join(row["kinds"]), ", ".join(row["owners"]))),
                str(row["checks"]),
                escape(row["description"]),
            )
        console.print(table)
    return 0
