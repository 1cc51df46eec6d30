"""The ML Test Score (Breck et al. 2017): 28 tests, scored from the evidence the factory holds.

Each test scores 0, 0.5 (manual or documented) or 1 (automated and repeated), with the evidence
shown; a section's score is the sum of its tests and the model's score the minimum of the four
sections, read against the paper's bands.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from factory_dagster.gates.gate import GATE_CHECK
from factory_dagster.lineage.graph import (
    DISTRIBUTION_EXPECTATIONS,
    AssetNode,
    CheckRun,
    FactoryGraph,
    StepRun,
)
from factory_dagster.products.model import model_inputs
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
FEATURE_LEAD_TIME = dt.timedelta(days=7)  # D6: a feature added reaches a served version within this
REGRESSION_FACTOR = 2.0  # Mon6: a step slower per row than this times its usual is a regression
COMPARABLE_ROWS = 2.0  # Mon6: runs compared handled between half and twice the latest run's rows
SCORE_EXPECTATIONS = ("expect_column_values_to_be_between", "expect_column_values_to_not_be_null")


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

    @property
    def trainings(self) -> list[dict]:
        """The recorded trainings, newest first (a rollback is recorded too, but trained nothing)."""
        return [t for t in self.model.history if "train_rows" in t["metadata"]]


def _when(timestamp: float) -> str:
    return f"{dt.datetime.fromtimestamp(timestamp, dt.UTC):%Y-%m-%d %H:%M} UTC"


def _verdict(run: CheckRun) -> str:
    return "passed" if run.passed else f"failed ({run.severity}): {run.description[:100]}"


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
    """From the training history: the inputs each recorded training used. A feature added between
    two trainings reached a served version within their interval (an upper bound of its lead time:
    had the spec declared it earlier, the earlier training would have used it)."""
    trainings = c.trainings
    if not trainings:
        return 0.0, "no training recorded: no feature has reached a served version"
    used = [set(t["metadata"].get("feature_importance") or {}) for t in trainings]
    pending = [f for f in model_inputs(c.graph.spec, c.spec) if f not in used[0]]
    if pending:
        return 0.5, (
            f"declared but in no trained version yet: {', '.join(pending)} "
            f"(the last training, {_when(trainings[0]['timestamp'])}, used {len(used[0])} inputs)"
        )
    for newer, older, after, before in zip(used, used[1:], trainings, trainings[1:], strict=False):
        if added := sorted(newer - older):
            lead = dt.timedelta(seconds=after["timestamp"] - before["timestamp"])
            within = lead <= FEATURE_LEAD_TIME
            return (1.0 if within else 0.5), (
                f"{', '.join(added)} added: served by the training of {_when(after['timestamp'])}, "
                f"{_hours(lead)} after the one without it ({'within' if within else 'beyond'} {FEATURE_LEAD_TIME.days} days)"
            )
    return 0.5, (
        f"no feature added across {len(trainings)} recorded training(s): lead time not measured yet "
        "(a feature is one YAML entry from the building-block vocabulary)"
    )


def _hours(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


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
    """From the gates' record on the raw sources upstream: a changed dependency (schema, types,
    codes, volumes) fails a source's gate, which stops everything downstream and shows in the UI;
    that notification exists only where a gate has run and recorded its verdicts."""
    sources = [c.graph.nodes[k] for k in sorted(c.graph.upstream(c.model.key)) if c.graph.nodes[k].role == "source"]
    if not sources:
        return 0.0, "no raw source upstream of the model"
    ungated = [n.key for n in sources if n.check_of("gate") is None]
    if len(ungated) == len(sources):
        return 0.0, f"no gate on {', '.join(ungated)}: a changed source notifies no one"
    if ungated:
        return 0.5, f"no gate on {', '.join(ungated)}: a change there notifies no one"
    silent = [n.key for n in sources if n.last_run("gate") is None]
    if silent:
        return 0.5, f"gated but no gate evaluation recorded yet on {', '.join(silent)}"
    watched = {s.source for s in c.graph.spec.sensors.values()}
    summary = "; ".join(
        f"{n.key}: {len(n.check_history[GATE_CHECK])} evaluation(s), last {_verdict(n.last_run('gate'))}"  # type: ignore[arg-type]
        + (" (a landing sensor watches it)" if n.key.split("/", 1)[-1] in watched else "")
        for n in sources
    )
    return 1.0, f"every raw source's gate ran and recorded its verdicts: {summary}"


@test("Mon2", "monitoring", "Data invariants hold in training and serving inputs")
def mon2(c: Context) -> Score:
    """From the gates' record on the model's feature sets: the evaluation that preceded the last
    training (its inputs) and the latest one (the inputs scored since) both held."""
    trainings = c.trainings
    if not c.predictions:
        return 0.0, "the model scores nothing: no serving inputs"
    if not trainings:
        return 0.0, "no training recorded"
    trained_at = trainings[0]["timestamp"]
    found: list[str] = []
    for node in c.feature_sets:
        if node.check_of("gate") is None:
            return 0.0, f"{node.key} has no gate: its invariants are checked neither in training nor in serving"
        runs = node.check_history.get(GATE_CHECK, [])
        training = max((r for r in runs if r.timestamp <= trained_at), key=lambda r: r.timestamp, default=None)
        serving = max(runs, key=lambda r: r.timestamp, default=None)
        if training is None or serving is None:
            return 0.5, f"no gate evaluation of {node.key} before the training of {_when(trained_at)}"
        for side, run in (("training", training), ("serving", serving)):
            if not run.passed:
                return (
                    0.5,
                    f"the {side} inputs of {node.key} broke its invariants ({_when(run.timestamp)}): {_verdict(run)}",
                )
        if serving is training:
            found.append(
                f"{node.key}: one gate evaluation ({_when(serving.timestamp)}) covered the training and scored inputs"
            )
        else:
            found.append(
                f"{node.key}: passed before the training ({_when(training.timestamp)}) and on the latest inputs "
                f"({_when(serving.timestamp)})"
            )
    if not found:
        return 0.0, "the model reads no gated feature set"
    return 1.0, "; ".join(found)


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
    """From the last training's recorded metrics (all finite) and the predictions gates' record
    (scores checked not null and within range, and passing)."""
    trainings = c.trainings
    if not trainings:
        return 0.0, "no training recorded"
    metrics = {k: v for k, v in trainings[0]["metadata"].items() if k.startswith("metric/")}
    broken = sorted(k for k, v in metrics.items() if not math.isfinite(float(v)))
    if broken:
        return 0.0, f"the training of {_when(trainings[0]['timestamp'])} recorded non-finite {', '.join(broken)}"
    trained = f"the last training recorded {len(metrics)} finite metrics"
    unchecked = [
        p.key
        for p in c.predictions
        if p.check_of("gate") is None
        or not any(e.type in SCORE_EXPECTATIONS and e.kwargs.get("column") == SCORE for e in p.suite.expectations)  # type: ignore[union-attr]
    ]
    if not c.predictions or unchecked:
        return 0.5, f"{trained}; scores of {', '.join(unchecked) or 'no predictions'} are not gated for NaN or range"
    for p in c.predictions:
        run = p.last_run("gate")
        if run is None:
            return 0.5, f"{trained}; the score gate of {p.key} has not run yet"
        if not run.passed:
            return 0.5, f"{trained}; the score gate of {p.key} {_verdict(run)}"
    return (
        1.0,
        f"{trained}; the last score gates of {', '.join(p.key for p in c.predictions)} passed (not null, in range)",
    )


@test("Mon6", "monitoring", "The model has not experienced a regression in computing performance")
def mon6(c: Context) -> Score:
    """From Dagster's step statistics: the latest training's and scoring's seconds per 1,000 rows
    against the median of earlier runs that handled a comparable number of rows."""
    states: dict[str, list[str]] = {"regressed": [], "within": [], "alone": [], "untimed": []}
    for node in (c.model, *c.predictions):
        state, figure = _step_regression(node.step_runs)
        states[state].append(f"{node.key} {figure}".rstrip())
    if states["regressed"]:
        return 0.5, "computing performance regressed: " + "; ".join(states["regressed"])
    if not states["within"] and not states["alone"]:
        return 0.0, "no timed run recorded"
    evidence = "; ".join(states["within"] + states["alone"])
    if states["untimed"]:
        evidence += f"; no timed run of {', '.join(s.split()[0] for s in states['untimed'])}"
    return (1.0 if not states["alone"] and not states["untimed"] else 0.5), evidence


def _step_regression(runs: list[StepRun]) -> tuple[str, str]:
    """(regressed | within | alone | untimed, the measured figures) of the newest timed run."""
    timed = [(r, r.rows) for r in runs if r.rows]
    if not timed:
        return "untimed", ""
    (latest, rows), *earlier = timed
    rate = latest.seconds / rows * 1000
    comparable = [r.seconds / n * 1000 for r, n in earlier if rows / COMPARABLE_ROWS <= n <= rows * COMPARABLE_ROWS]
    figure = f"{rate:.3f} s per 1,000 rows ({latest.seconds:.1f} s, {rows} rows)"
    if not comparable:
        return "alone", f"{figure}: no earlier run of its size to compare with yet"
    usual = statistics.median(comparable)
    slower = rate > REGRESSION_FACTOR * usual
    return ("regressed" if slower else "within"), (
        f"{figure} {'>' if slower else '<='} {REGRESSION_FACTOR:g} x the median {usual:.3f} "
        f"of {len(comparable)} earlier run(s) of its size"
    )


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
