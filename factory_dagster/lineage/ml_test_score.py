"""The ML Test Score (Breck et al. 2017): 28 tests, scored from the evidence the factory holds.

Each test scores 0, 0.5 (manual or documented) or 1 (automated and repeated), with the evidence
shown; a section's score is the sum of its tests and the model's score the minimum of the four
sections, read against the paper's bands.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from factory_dagster.lineage.graph import (
    DISTRIBUTION_EXPECTATIONS,
    AssetNode,
    FactoryGraph,
)
from factory_dagster.products.predictions import SCORE

SECTIONS = ("data", "model", "infrastructure", "monitoring")
BANDS = (
    (0.0, "research project"),
    (1.0, "serious holes in reliability possible"),
    (2.0, "first productionization pass"),
    (3.0, "reasonably tested"),
    (5.0, "strong levels of automated testing and monitoring"),
    (math.inf, "exceptional"),
)
FORBIDDEN_TAGS = ("deprecated", "experimental", "pii")


@dataclass
class TestResult:
    id: str
    section: str
    title: str
    score: float
    evidence: str


@dataclass
class ModelScore:
    model: str
    tests: list[TestResult] = field(default_factory=list)

    def section(self, name: str) -> float:
        return sum(t.score for t in self.tests if t.section == name)

    @property
    def score(self) -> float:
        return min(self.section(s) for s in SECTIONS)

    @property
    def band(self) -> str:
        return band(self.score)

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "score": self.score,
            "band": self.band,
            "sections": {s: self.section(s) for s in SECTIONS},
            "tests": [asdict(t) for t in self.tests],
        }


def band(score: float) -> str:
    if score <= 0:
        return BANDS[0][1]
    for upper, label in BANDS[1:]:
        if score <= upper:
            return label
    return BANDS[-1][1]


@dataclass
class Context:
    graph: FactoryGraph
    model: AssetNode

    @property
    def spec(self):
        return self.graph.spec.models[self.model.key]

    @property
    def feature_sets(self) -> list[AssetNode]:
        return [self.graph.nodes[k] for k in self.spec.features if k in self.graph.nodes]

    @property
    def predictions(self) -> list[AssetNode]:
        return [
            self.graph.nodes[k]
            for k, p in self.graph.spec.predictions.items()
            if p.model == self.model.key and k in self.graph.nodes
        ]

    @property
    def inputs(self) -> list[str]:
        return list(self.model.column_lineage) or [
            f for f in self.model.metadata.get("factory/features", "").split(", ") if f
        ]


Score = tuple[float, str]
TESTS: list[tuple[str, str, str, Callable[[Context], Score]]] = []


def test(test_id: str, section: str, title: str):
    def register(fn: Callable[[Context], Score]) -> Callable[[Context], Score]:
        TESTS.append((test_id, section, title, fn))
        return fn

    return register


def _suite_columns(node: AssetNode) -> set[str]:
    return {c for e in (node.suite.expectations if node.suite else ()) for c in e.columns}


# --- Data -------------------------------------------------------------------------------------
@test("D1", "data", "Feature expectations are captured in a schema")
def d1(c: Context) -> Score:
    gated = [n.key for n in c.feature_sets if n.suite is not None and n.gated]
    if c.feature_sets and len(gated) == len(c.feature_sets):
        return 1.0, f"blocking GX gates on {', '.join(gated)} run on every materialization"
    return 0.0, "a feature set of the model has no GX suite"


@test("D2", "data", "All features are beneficial")
def d2(c: Context) -> Score:
    importance = c.model.metadata.get("feature_importance") or {}
    if not importance:
        return 0.0, "no permutation importance recorded (train the model)"
    eps = c.graph.spec.debt.thresholds.importance_epsilon
    weak = sorted(f for f, v in importance.items() if v <= eps)
    if weak:
        return 0.0, f"permutation importance <= {eps} for {', '.join(weak)} (measured at every training)"
    return 1.0, f"every input's permutation importance > {eps}, measured at every training"


@test("D3", "data", "No feature's cost is too much")
def d3(c: Context) -> Score:
    return 0.0, "the cost (time, memory) of each feature is not measured"


@test("D4", "data", "Features adhere to meta-level requirements")
def d4(c: Context) -> Score:
    closure = c.graph.upstream(c.model.key)
    bad = sorted(
        k
        for k in closure
        for tag in FORBIDDEN_TAGS
        if tag in c.graph.nodes[k].tags or c.graph.nodes[k].tags.get("stage") == tag
    )
    if bad:
        return 0.0, f"inputs tagged {'/'.join(FORBIDDEN_TAGS)}: {', '.join(bad)}"
    return (
        1.0,
        f"no asset among {len(closure)} upstream is tagged {', '.join(FORBIDDEN_TAGS)} (checked at every evaluation)",
    )


@test("D5", "data", "The data pipeline has appropriate privacy controls")
def d5(c: Context) -> Score:
    pii = sorted(k for k in c.graph.upstream(c.model.key) if "pii" in c.graph.nodes[k].tags)
    if pii:
        return 0.0, f"assets tagged pii feed the model: {', '.join(pii)}"
    return 0.0, "no column or asset is classified (tag pii), so privacy cannot be judged"


@test("D6", "data", "New features can be added quickly")
def d6(c: Context) -> Score:
    return (
        0.5,
        "a feature is a YAML entry from the building-block vocabulary (README: Adding a feature); lead time not measured",
    )


@test("D7", "data", "All input feature code is tested")
def d7(c: Context) -> Score:
    covered = set().union(*(_suite_columns(n) for n in c.feature_sets)) if c.feature_sets else set()
    untested = [f for f in c.inputs if f and f not in covered]
    if not c.inputs:
        return 0.0, "the model's inputs are unknown"
    if not untested:
        return 1.0, "every input has at least one expectation in its feature set's gate; the vocabulary is unit tested"
    return 0.5, f"inputs without an expectation: {', '.join(untested)}"


# --- Model ------------------------------------------------------------------------------------
@test("M1", "model", "Model specs are reviewed and submitted")
def m1(c: Context) -> Score:
    """From what the factory recorded: is the served version trained from the spec as it is now?
    (Review itself happens in the pull request, which the factory does not see.)"""
    doc = c.graph.spec.documents.get(("models", c.model.key))
    if doc is None:
        return 0.0, "the model's spec file is unknown"
    trained = c.model.metadata.get("factory/code_version")
    if not c.model.history:
        return 0.0, f"{doc.path.name} declares it, but no training is recorded"
    if trained is not None and trained == c.model.code_version:
        return 0.5, (
            f"the last training recorded code version {trained}, the one {doc.path.name} declares now "
            "(review happens in the pull request: manual)"
        )
    return (
        0.0,
        f"{doc.path.name} changed since the last recorded training (code version {trained} → {c.model.code_version})",
    )


@test("M2", "model", "Offline proxy metrics correlate with online impact")
def m2(c: Context) -> Score:
    return 0.0, "no online metric is available to compare with"


@test("M3", "model", "All hyperparameters have been tuned")
def m3(c: Context) -> Score:
    return 0.0, "no hyperparameter search asset sits upstream of the model"


@test("M4", "model", "The impact of model staleness is known")
def m4(c: Context) -> Score:
    return 0.0, "no backtest (train at t-k, score at t) is run"


@test("M5", "model", "A simpler model is not better")
def m5(c: Context) -> Score:
    gated = c.spec.metrics_to_beat_baseline()
    meta = c.model.metadata
    compared = [m for m in gated if f"metric/{m}" in meta and f"baseline/{m}" in meta]
    if gated and compared:
        summary = ", ".join(f"{m} {meta[f'metric/{m}']:.3f} vs {meta[f'baseline/{m}']:.3f}" for m in compared)
        return 1.0, f"promotion requires beating the Dummy baseline on {', '.join(gated)}; last: {summary}"
    if any(k.startswith("baseline/") for k in meta):
        return 0.5, "the baseline is measured but promotion does not require beating it"
    return 0.0, "no baseline comparison"


@test("M6", "model", "Model quality is sufficient on all important data slices")
def m6(c: Context) -> Score:
    slices = c.model.metadata.get("slice_metrics") or {}
    if slices and c.spec.promotion.slice_min:
        return 1.0, (
            f"promotion requires {c.spec.promotion.slice_min} on every value of "
            f"{', '.join(slices)} ({sum(len(v) for v in slices.values())} slices measured)"
        )
    if slices:
        return 0.5, f"metrics per {', '.join(slices)} are recorded but not gated"
    return 0.0, "no slice metrics (declare `slices:` in the model spec)"


@test("M7", "model", "The model is tested for considerations of inclusion")
def m7(c: Context) -> Score:
    return 0.0, "no protected attribute is declared to slice on"


# --- Infrastructure ---------------------------------------------------------------------------
@test("I1", "infrastructure", "Training is reproducible")
def i1(c: Context) -> Score:
    if c.spec.seed is None:
        return 0.0, "no seed in the model spec"
    trainings = [
        t["metadata"]
        for t in c.model.history
        if t["metadata"].get("training_data_sha256") and t["metadata"].get("artifact_sha256")
    ]
    artifacts: dict[str, set[str]] = {}
    for meta in trainings:
        artifacts.setdefault(meta["training_data_sha256"], set()).add(meta["artifact_sha256"])
    runs = Counter(meta["training_data_sha256"] for meta in trainings)
    if any(len(a) > 1 for a in artifacts.values()):
        return 0.0, "the same training data gave different artifacts"
    if any(runs[d] > 1 for d in artifacts):
        return 1.0, f"seed {c.spec.seed}: retraining on the same data hash gave the same artifact hash"
    return 0.5, f"seed {c.spec.seed} and the training-data hash are recorded; no repeat training to compare yet"


@test("I2", "infrastructure", "Model specification code is unit tested")
def i2(c: Context) -> Score:
    """From the promotion check's record: the spec's pipeline was fitted and evaluated against a
    baseline by the check (the paper's unit test of model code), not only declared."""
    run = c.model.last_run("promotion")
    if run is None:
        return 0.0, f"{c.spec.estimator.name} is validated at load, but no promotion check has run on it"
    if run.passed:
        return 1.0, "the last promotion check fitted the spec's pipeline and passed its thresholds and baseline"
    return 0.5, f"the last promotion check ran and failed: {run.description[:120]}"


@test("I3", "infrastructure", "The full ML pipeline is integration tested")
def i3(c: Context) -> Score:
    closure = {k for k in c.graph.upstream(c.model.key) if c.graph.nodes[k].role != "report"}
    for training in c.model.history:
        if closure <= set(training["run_assets"]):
            return 1.0, f"run {training['run_id'][:8]} built the model with all {len(closure)} upstream assets"
    return 0.0, "no run has built the model together with everything upstream of it"


@test("I4", "infrastructure", "Model quality is validated before serving")
def i4(c: Context) -> Score:
    promotion = any(ch.kind == "promotion" and ch.blocking for ch in c.model.checks)
    served = [p.key for p in c.predictions if p.gated]
    if promotion and served and len(served) == len(c.predictions):
        return 1.0, f"blocking promotion check on the model; blocking gates on {', '.join(served)}"
    if promotion:
        return 0.5, "blocking promotion check; the predictions are not gated"
    return 0.0, "nothing blocks a bad model from serving"


@test("I5", "infrastructure", "The model is debuggable")
def i5(c: Context) -> Score:
    return 0.0, "no single-example trace through the pipeline"


@test("I6", "infrastructure", "Models are canaried before serving")
def i6(c: Context) -> Score:
    return 0.0, "no shadow or canary scoring"


@test("I7", "infrastructure", "Serving models can be rolled back")
def i7(c: Context) -> Score:
    versions = {t["metadata"].get("model_version") for t in c.model.history} - {None}
    if len(versions) >= 2:
        return 1.0, f"{len(versions)} hash-verified versions in the registry; `factory rollback` serves an earlier one"
    return 0.5, "`factory rollback` exists; only one version trained so far"


# --- Monitoring -------------------------------------------------------------------------------
@test("Mon1", "monitoring", "Dependency changes result in notification")
def mon1(c: Context) -> Score:
    sources = sorted(k for k in c.graph.upstream(c.model.key) if c.graph.nodes[k].role == "source")
    watched = {s.source for s in c.graph.spec.sensors.values()}
    covered = [k for k in sources if k.split("/", 1)[1] in watched or c.graph.nodes[k].freshness]
    if sources and len(covered) == len(sources):
        return 1.0, "every raw source is watched by a sensor or a freshness policy"
    if covered:
        return 0.5, f"watched: {', '.join(covered)}; not watched: {', '.join(k for k in sources if k not in covered)}"
    return 0.0, "no raw source is watched"


@test("Mon2", "monitoring", "Data invariants hold in training and serving inputs")
def mon2(c: Context) -> Score:
    served_from = set(c.spec.features)
    if c.predictions and all(n.gated for n in c.feature_sets):
        return 1.0, f"training and serving read the same gated feature sets ({', '.join(sorted(served_from))})"
    return 0.0, "serving inputs are not validated like training inputs"


@test("Mon3", "monitoring", "Training and serving features compute the same values")
def mon3(c: Context) -> Score:
    """From the drift monitors' record: serving inputs compared with the training reference."""
    monitored = [p for p in c.predictions if p.check_of("drift")]
    if not monitored:
        return 0.0, "no drift monitor compares serving inputs with the training reference"
    runs = {p.key: p.last_run("drift") for p in monitored}
    if any(run is None for run in runs.values()):
        return 0.5, f"drift monitor declared on {', '.join(runs)} but no result recorded yet"
    failed = {k: r for k, r in runs.items() if r is not None and not r.passed}
    if failed:
        key, run = next(iter(failed.items()))
        return 0.5, f"the last drift check of {key} found serving inputs unlike training: {run.description[:120]}"
    return 1.0, f"the last drift checks of {', '.join(runs)} found serving inputs like the training reference"


@test("Mon4", "monitoring", "Models are not too stale")
def mon4(c: Context) -> Score:
    """From the model's last recorded training against its freshness policy."""
    freshness = c.spec.freshness
    if not c.model.freshness or freshness is None:
        return 0.0, "no freshness policy on the model"
    if c.model.last_materialized is None:
        return 0.5, "a freshness policy is declared; no training recorded yet"
    age = dt.timedelta(seconds=c.graph.now - c.model.last_materialized)
    limit = freshness.fail_after or freshness.warn_after
    if limit is not None and age > limit:
        return 0.5, f"last trained {age.days} days ago, beyond its freshness policy ({limit})"
    return 1.0, f"last trained {age.days} days ago, within its freshness policy ({limit})"


@test("Mon5", "monitoring", "The model is numerically stable")
def mon5(c: Context) -> Score:
    checked = [
        p.key
        for p in c.predictions
        if p.suite is not None
        and any(
            e.type in ("expect_column_values_to_be_between", "expect_column_values_to_not_be_null")
            and e.kwargs.get("column") == SCORE
            for e in p.suite.expectations
        )
    ]
    if checked and len(checked) == len(c.predictions):
        return 1.0, "scores are gated not null and within range; promotion refuses non-finite metrics"
    return 0.0, "scores are not checked for NaN or range"


@test("Mon6", "monitoring", "The model has not experienced a regression in computing performance")
def mon6(c: Context) -> Score:
    return 0.0, "training and scoring durations are recorded by Dagster but not compared over time"


@test("Mon7", "monitoring", "The model has not experienced a regression in prediction quality")
def mon7(c: Context) -> Score:
    """From the realized-performance monitors' record, else the score distribution bounds (a proxy)."""
    monitors = [
        c.graph.nodes[k]
        for p in c.predictions
        for k in p.children
        if k in c.graph.nodes and c.graph.nodes[k].check_of("performance")
    ]
    runs = {m.key: m.last_run("performance") for m in monitors}
    if any(run is not None and not run.passed for run in runs.values()):
        key, run = next((k, r) for k, r in runs.items() if r is not None and not r.passed)
        return 0.5, f"realized metrics decayed ({key}): {run.description[:120]}"
    if runs and all(run is not None for run in runs.values()):
        return 1.0, f"realized metrics on labelled days are within tolerance of offline ({', '.join(runs)})"
    drift = [
        p.key
        for p in c.predictions
        if p.suite is not None and any(e.type in DISTRIBUTION_EXPECTATIONS for e in p.suite.expectations)
    ]
    if runs:
        return 0.5, f"realized performance monitored by {', '.join(runs)}; no result recorded yet"
    if drift:
        return 0.5, f"score distribution bounded in {', '.join(drift)} (a proxy); delayed labels are not joined back"
    return 0.0, "prediction quality is not monitored"


def score_model(graph: FactoryGraph, model: str) -> ModelScore:
    context = Context(graph, graph.nodes[model])
    result = ModelScore(model)
    for test_id, section, title, fn in TESTS:
        value, evidence = fn(context)
        result.tests.append(TestResult(test_id, section, title, value, evidence))
    return result


def score_all(graph: FactoryGraph) -> list[ModelScore]:
    return [score_model(graph, n.key) for n in graph.of_role("model")]
