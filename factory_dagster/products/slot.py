"""Serving slots: several models compete to serve one slot. The slot's champion is the member
version that serves; every newly trained member version (a candidate) must beat it on the same
held-out rows, by a paired bootstrap interval of the metric difference, to take its place.

A slot is declared in a line's `slots:` section and builds no asset of its own: the members'
promotion checks judge candidates, and a predictions asset of a member scores for the slot
(the champion, and the other members in shadow). Its serving record is a `SlotRegistry`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import dagster as dg
import polars as pl
from pydantic import Field, NonNegativeFloat, field_validator

from factory_dagster.markdown import markdown_table
from factory_dagster.products.kind import BuildableKind, BuildContext
from factory_dagster.products.model import Metric, ModelSpec, check_model, model_frame, model_registry
from factory_dagster.spec import FactorySpec
from factory_dagster.spec.errors import SpecError, known
from factory_dagster.spec.product import ProductSpec
from factory_dagster.spec.types import Name
from factory_dagster.storage.artifacts import ModelVersion, SlotRegistry, SlotTenure
from factory_dagster.storage.home import FactoryHome

if TYPE_CHECKING:
    from factory_dagster.products.paired import PairedComparison
    from factory_dagster.products.training import Window

CHAMPION, CHALLENGER = "champion", "challenger"


class SlotSpec(ProductSpec):
    """Models competing for one serving slot, and how a candidate must beat the champion."""

    members: list[Name]
    metric: Metric
    confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95  # of the difference's bootstrap interval
    min_improvement: NonNegativeFloat = 0.0  # the interval's low end must exceed it (in metric units)
    seed: int = 0  # of the bootstrap

    @field_validator("members")
    @classmethod
    def _competing(cls, members: list[str]) -> list[str]:
        if len(members) < 2:
            raise ValueError(f"a slot needs at least two members to compete (got {len(members)})")
        return members


class SlotKind(BuildableKind):
    section = "slots"
    spec_model = SlotSpec
    label = "serving slot"
    table = False
    role = "slot"

    def check(self, spec: FactorySpec, name: str) -> list[SpecError]:
        return check_slot(spec, name)

    def build(self, spec: FactorySpec, names: list[str], context: BuildContext) -> list[dg.AssetsDefinition]:
        return []  # judged by its members' promotion checks, served by their predictions


KIND = SlotKind()


def _target(model: ModelSpec) -> str:
    t = model.target
    return t.column if t.op is None else f"{t.column} {t.op} {t.value!r}"


def check_slot(spec: FactorySpec, name: str) -> list[SpecError]:
    slot: SlotSpec = spec.slots[name]
    errors: list[SpecError] = []
    seen: set[str] = set()
    members: list[tuple[int, str, ModelSpec]] = []
    for index, member in enumerate(slot.members):
        at = ("members", index)
        if member not in spec.models:
            errors.append(spec.error("slots", name, at, f"unknown model '{member}' (known: {known(spec.models)})"))
        elif member in seen:
            errors.append(spec.error("slots", name, at, f"'{member}' is listed twice"))
        elif other := next((o for o in spec.slots if o < name and member in spec.slots[o].members), None):
            errors.append(spec.error("slots", name, at, f"'{member}' already competes in slot '{other}'"))
        elif not check_model(spec, member):  # a broken member's own error says what to fix; no echo here
            members.append((index, member, spec.models[member]))
        seen.add(member)
    if not members:
        return errors
    _, first, first_model = members[0]
    for index, member, model in members:
        if slot.metric not in model.metric_names():
            errors.append(
                spec.error(
                    "slots",
                    name,
                    ("metric",),
                    f"'{slot.metric}' is not among {member}'s metrics ({', '.join(model.metric_names())})",
                )
            )
        if model is first_model:
            continue
        if model.target != first_model.target:
            errors.append(
                spec.error(
                    "slots",
                    name,
                    ("members", index),
                    f"{member} predicts {_target(model)} but {first} predicts {_target(first_model)}: "
                    "a slot's members share one target",
                )
            )
        elif row_keys(spec, model) != row_keys(spec, first_model):
            errors.append(
                spec.error(
                    "slots",
                    name,
                    ("members", index),
                    f"{member} scores rows keyed by ({', '.join(row_keys(spec, model))}) but {first} by "
                    f"({', '.join(row_keys(spec, first_model))}): a slot's members score the same rows",
                )
            )
    return errors


def row_keys(spec: FactorySpec, model: ModelSpec) -> list[str]:
    """The columns keying the rows a model scores: its first feature set's entity and timestamp."""
    fs = spec.feature_sets.get(next(iter(model.features)))
    return fs.key_columns() if fs is not None else []


def slot_of(spec: FactorySpec, model: str) -> str | None:
    """The slot a model competes in, if any."""
    slots = spec.products.get(KIND.section or "", {})
    return next((name for name, slot in slots.items() if isinstance(slot, SlotSpec) and model in slot.members), None)


def slot_registry(home: FactoryHome, name: str) -> SlotRegistry:
    return SlotRegistry(home.model_dir(name))


@dataclass(frozen=True)
class SlotVerdict:
    """What a candidate's judgement decided: whether it now serves the slot, and the evidence.
    A candidate that did not take the slot still passes its promotion check: it met its own rules,
    so it becomes its model's served version, which scores the slot's rows in shadow (`role`)."""

    slot: str
    promoted: bool
    description: str
    comparison: PairedComparison | None = None
    champion: SlotTenure | None = None  # the one it was compared with
    window: str = ""
    role: str = CHAMPION  # what the candidate does in the slot from now on

    def metadata(self) -> dict[str, Any]:
        c = self.comparison
        meta: dict[str, Any] = {
            "slot": self.slot,
            "slot_verdict": self.description,
            "slot_promoted": self.promoted,
            "slot_role": self.role,
        }
        if self.champion is not None:
            meta["slot_champion"] = f"{self.champion.model}@{self.champion.version}"
        if c is not None:
            meta |= {
                "slot_metric": c.metric,
                f"slot/{c.metric}_candidate": dg.MetadataValue.float(c.candidate),
                f"slot/{c.metric}_champion": dg.MetadataValue.float(c.champion),
                "slot/improvement": dg.MetadataValue.float(c.improvement),
                "slot/interval_low": dg.MetadataValue.float(c.low),
                "slot/interval_high": dg.MetadataValue.float(c.high),
                "slot/confidence": dg.MetadataValue.float(c.confidence),
                "slot/window": self.window,
                "slot/rows": c.rows,
                "slot_comparison": dg.MetadataValue.md(
                    markdown_table(
                        ["", c.metric],
                        [
                            ("candidate", f"{c.candidate:.4f}"),
                            (f"champion {meta.get('slot_champion', '')}".strip(), f"{c.champion:.4f}"),
                            ("improvement", f"{c.improvement:+.4f}"),
                            (f"{c.confidence:.0%} interval", f"{c.low:+.4f}..{c.high:+.4f}"),
                            ("rows (both scored)", str(c.rows)),
                            ("window", self.window),
                        ],
                    )
                ),
            }
        return meta


def held_out_rows(model: ModelSpec, frame: pl.DataFrame, timestamp: str, window: Window) -> pl.DataFrame:
    """The labelled rows of `window` in a model's frame."""
    from factory_dagster.products.training import TARGET, target_expression

    return frame.with_columns(target_expression(model.target).alias(TARGET)).filter(
        pl.col(TARGET).is_not_null() & pl.col(timestamp).dt.date().is_between(window.start, window.end)
    )


def scores_on(model: ModelSpec, pipeline: Any, record: ModelVersion, rows: pl.DataFrame) -> pl.Series:
    from factory_dagster.products.training import input_frame, score_frame

    return pl.Series(score_frame(pipeline, model.task, input_frame(rows, record.details["features"])), dtype=pl.Float64)


def judge_candidate(
    spec: FactorySpec,
    home: FactoryHome,
    name: str,
    record: ModelVersion,
    pipeline: Any,
    frame: pl.DataFrame,
    timestamp: str,
    window: Window,
) -> SlotVerdict:
    """Judge `name`'s new version `record` (its own promotion rules met) against the slot's
    champion on the candidate's test window, and serve it when it wins (or the slot is empty)."""
    from factory_dagster.products.paired import paired_bootstrap
    from factory_dagster.products.training import TARGET

    slot_name = slot_of(spec, name)
    assert slot_name is not None
    slot: SlotSpec = spec.slots[slot_name]
    registry = slot_registry(home, slot_name)
    champion = registry.champion()
    if champion is None:
        registry.serve(name, record.version, record.sha256, "first to pass its promotion rules")
        return SlotVerdict(slot_name, True, f"first champion of slot {slot_name} (its promotion rules met)")
    if champion.model not in slot.members:  # the spec changed: nobody left to compare with
        registry.serve(name, record.version, record.sha256, f"{champion.model} left the slot")
        return SlotVerdict(
            slot_name,
            True,
            f"champion of slot {slot_name} (its promotion rules met): the champion "
            f"{champion.model}@{champion.version} is no longer a member",
        )
    if (champion.model, champion.version) == (name, record.version):
        return SlotVerdict(slot_name, False, f"already the champion of slot {slot_name}", champion=champion)
    model: ModelSpec = spec.models[name]
    champion_model: ModelSpec = spec.models[champion.model]
    champion_pipeline, champion_record = model_registry(home, champion.model).load(
        champion.version, expected_sha256=champion.sha256
    )
    keys = row_keys(spec, model)
    candidate_rows = held_out_rows(model, frame, timestamp, window)
    if champion_model.features == model.features:
        champion_rows = candidate_rows
    else:
        champion_frame, _, champion_time = model_frame(spec, champion_model, home)
        champion_rows = held_out_rows(champion_model, champion_frame, champion_time, window)
    paired = (
        candidate_rows.select([*keys, TARGET])
        .with_columns(scores_on(model, pipeline, record, candidate_rows).alias("__candidate"))
        .join(
            champion_rows.select(keys).with_columns(
                scores_on(champion_model, champion_pipeline, champion_record, champion_rows).alias("__champion")
            ),
            on=keys,
            how="inner",
        )
    )
    shown = f"{window.start}..{window.end}"
    if paired.is_empty():
        return SlotVerdict(
            slot_name,
            False,
            f"did not take slot {slot_name}, serves it in shadow as a challenger: no rows of {shown} are scored "
            "by both it and the champion",
            champion=champion,
            window=shown,
            role=CHALLENGER,
        )
    comparison = paired_bootstrap(
        slot.metric,
        model.task,
        paired.get_column(TARGET).to_numpy(),
        paired.get_column("__candidate").to_numpy(),
        paired.get_column("__champion").to_numpy(),
        model.threshold,
        slot.confidence,
        slot.seed,
    )
    c = comparison
    evidence = (
        f"{c.metric} {c.candidate:.4f} vs champion {champion.model}@{champion.version} {c.champion:.4f} on "
        f"{c.rows} rows of {shown}, improvement {c.improvement:+.4f} ({c.confidence:.0%} CI "
        f"{c.low:+.4f}..{c.high:+.4f})"
    )
    if comparison.beats(slot.min_improvement):
        registry.serve(name, record.version, record.sha256, f"beat {champion.model}@{champion.version}: {evidence}")
        return SlotVerdict(slot_name, True, f"now serves slot {slot_name}: {evidence}", c, champion, shown)
    bar = f"{slot.min_improvement:g}" if slot.min_improvement else "0"
    return SlotVerdict(
        slot_name,
        False,
        f"did not take slot {slot_name} (interval not above {bar}), serves it in shadow as a challenger: {evidence}",
        c,
        champion,
        shown,
        CHALLENGER,
    )


@dataclass(frozen=True)
class Scorer:
    """One model version scoring a slot's rows, in its role."""

    model: str
    record: ModelVersion
    pipeline: Any
    role: str


def slot_scorers(spec: FactorySpec, home: FactoryHome, slot_name: str, expected: dict[str, str | None]) -> list[Scorer]:
    """The champion, then every member's own served version as a challenger (in shadow), each
    loaded hash-verified (`expected`: a member's artifact hash recorded by Dagster, if any)."""
    champion = slot_registry(home, slot_name).champion()
    if champion is None:
        raise FileNotFoundError(f"slot {slot_name} has no champion yet (no member passed its promotion check)")
    if champion.model not in spec.slots[slot_name].members:
        raise FileNotFoundError(
            f"slot {slot_name} is served by {champion.model}@{champion.version}, no longer a member: "
            f"train a member (or factory rollback {slot_name} --to one that served it)"
        )
    pipeline, record = model_registry(home, champion.model).load(champion.version, expected_sha256=champion.sha256)
    scorers = [Scorer(champion.model, record, pipeline, CHAMPION)]
    for member in spec.slots[slot_name].members:
        registry = model_registry(home, member)
        current = registry.current()
        if current is None or (member, current.version) == (champion.model, champion.version):
            continue
        pipeline, record = registry.load(current.version, expected_sha256=expected.get(member))
        scorers.append(Scorer(member, record, pipeline, CHALLENGER))
    return scorers


def rollback_slot(
    spec: FactorySpec, home: FactoryHome, instance: dg.DagsterInstance, name: str, to: str | None = None
) -> tuple[SlotTenure, SlotTenure]:
    """Serve a version of a current member that served the slot before (by default the champion
    before the current one); returns (new, old). The artifact is hash-checked first; the switch
    is recorded as an observation of the new champion's model."""
    registry = slot_registry(home, name)
    everyone = registry.history()
    if not everyone:
        raise LookupError(f"slot {name} has no champion yet")
    current = everyone[-1]
    history = [t for t in everyone if t.model in spec.slots[name].members]
    if to is not None:
        target = next((t for t in reversed(history) if to in (t.version, f"{t.model}@{t.version}")), None)
        if target is None:
            raise LookupError(
                f"slot {name} was never served by {to} (served: "
                f"{', '.join(dict.fromkeys(f'{t.model}@{t.version}' for t in history))})"
            )
    else:
        earlier = [t for t in history if (t.model, t.version) != (current.model, current.version)]
        if not earlier:
            raise LookupError(f"slot {name} has no champion older than the current {current.model}@{current.version}")
        target = earlier[-1]
    members = model_registry(home, target.model)
    members.verified_bytes(members.get(target.version), target.sha256)  # ArtifactIntegrityError when tampered
    served = registry.serve(
        target.model, target.version, target.sha256, f"rolled back from {current.model}@{current.version}"
    )
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=dg.AssetKey(target.model),
            description=f"serves slot {name} again (rolled back from {current.model}@{current.version})",
            metadata={"slot": name, "slot_champion": target.version, "rolled_back_from": current.version},
        )
    )
    return served, current


def on_date(registry: SlotRegistry, day: dt.date) -> list[SlotTenure]:
    """The champions that served the slot on a day (UTC)."""
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    return registry.served_during(start, start + dt.timedelta(days=1))
