"""`factory models history MODEL|SLOT`: which version served when (and on a given date)."""

from __future__ import annotations

import argparse
import datetime as dt

from factory_dagster.cli.common import console, fail, load
from factory_dagster.products.model import model_registry
from factory_dagster.products.slot import on_date, slot_registry
from factory_dagster.storage.home import FactoryHome


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("models", help="the serving history of a model or a serving slot")
    parser.add_argument("action", choices=["history"])
    parser.add_argument("model", help="a model, or a serving slot (its champions)")
    parser.add_argument(
        "--on", metavar="DATE", type=dt.date.fromisoformat, help="only the versions that served on that day (UTC)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    loaded = load(args)
    if any(args.model in spec.slots for spec in loaded.specs):
        return _slot_history(loaded.home, args)
    loaded.line_of("models", args.model, "model")
    registry = model_registry(loaded.home, args.model)
    history = registry.serving_history()
    if not history:
        fail(f"{args.model} has never served a version")
    if args.on is not None:
        start = dt.datetime.combine(args.on, dt.time(), dt.UTC)
        versions = registry.served_during(start, start + dt.timedelta(days=1))
        if not versions:
            fail(f"{args.model}: no version served on {args.on} (first served {history[0][0]:%Y-%m-%d %H:%M} UTC)")
        console.print(f"{args.model} on {args.on}: {', '.join(v.version for v in versions)}", markup=False)
        return 0
    for began, until, version in history:
        metrics = version.details.get("metrics", {})
        shown = ", ".join(f"{k} {v:.4f}" for k, v in list(metrics.items())[:2])
        console.print(f"{_span(began, until)}  {version.version}  {shown}", markup=False)
    return 0


def _span(began: dt.datetime, until: dt.datetime | None) -> str:
    return f"{began:%Y-%m-%d %H:%M:%S} .. {f'{until:%Y-%m-%d %H:%M:%S}' if until else 'now':19}"


def _slot_history(home: FactoryHome, args: argparse.Namespace) -> int:
    """A slot's champions: which member version served it when, and why it started to."""
    registry = slot_registry(home, args.model)
    history = registry.serving_history()
    if not history:
        fail(f"slot {args.model} has never had a champion")
    if args.on is not None:
        served = on_date(registry, args.on)
        if not served:
            fail(f"slot {args.model}: no version served on {args.on} (first served {history[0][0]:%Y-%m-%d %H:%M} UTC)")
        console.print(
            f"{args.model} on {args.on}: {', '.join(f'{t.model}@{t.version}' for t in served)}",
            markup=False,
            soft_wrap=True,
        )
        return 0
    for began, until, tenure in history:
        console.print(
            f"{_span(began, until)}  {tenure.model}@{tenure.version}  {tenure.reason}", markup=False, soft_wrap=True
        )
    return 0
