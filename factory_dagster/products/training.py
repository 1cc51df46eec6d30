"""Train and evaluate a scikit-learn Pipeline from a model spec, against a Dummy baseline.

scikit-learn is imported inside the functions: loading definitions never pays for it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import io
import platform
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from factory_dagster.products.feature_blocks import compare
from factory_dagster.products.model import (
    LOWER_IS_BETTER,
    ModelSpec,
    SplitSpec,
    TargetSpec,
)
from factory_dagster.products.monitor import SCORE_COLUMN, reference_sample
from factory_dagster.spec.estimators import ESTIMATORS, EstimatorInfo

ROW = "__row"  # a row's position in a scanned frame
TARGET = "__target"
IMPORTANCE_SAMPLE = 5000


class TrainingError(Exception):
    """The data cannot train this model (empty split, one class only, ...)."""


@dataclass
class Window:
    start: dt.date
    end: dt.date

    def __str__(self) -> str:
        return f"{self.start}..{self.end}"


@dataclass
class TrainingResult:
    pipeline: Any
    metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    train_window: Window
    test_window: Window
    train_rows: int  # the rows the model was fitted on
    test_rows: int
    positive_rate: float | None
    data_sha256: str
    features: list[str]
    categorical: list[str]
    importances: dict[str, float] = field(default_factory=dict)
    slice_metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    reference: pl.DataFrame | None = None  # training inputs and scores, for drift monitoring
    train_rows_available: int = 0  # the train window's rows, before `max_train_rows` sampled them


def library_versions() -> dict[str, str]:
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "polars": pl.__version__,
    }


def target_expression(target: TargetSpec) -> pl.Expr:
    if target.op is None:
        return pl.col(target.column).cast(pl.Float64)
    return compare(target.column, target.op, target.value).cast(pl.Int8)


def split_windows(days: pl.Series, split: SplitSpec) -> tuple[Window, Window]:
    """Train window then test window, ending at `split.end` (or the latest day in the data)."""
    if days.is_empty():
        raise TrainingError("no rows to train on")
    latest = days.max()
    assert isinstance(latest, dt.date), "days are dates"
    end = latest if split.end == "latest" else split.end
    test_start = end - dt.timedelta(days=split.test_days - 1)
    train_end = test_start - dt.timedelta(days=1)
    train_start = train_end - dt.timedelta(days=split.train_days - 1)
    return Window(train_start, train_end), Window(test_start, end)


def frame_sha256(frame: pl.DataFrame) -> str:
    buffer = io.BytesIO()
    frame.write_ipc_stream(buffer, compression="uncompressed")
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def stratified_keep(days: pl.Series, limit: int, seed: int | None) -> pl.Series:
    """Which rows a sample of `limit` keeps (all when there are no more), one per day in `days`:
    each day keeps its share of `limit` rounded by largest remainder, so within one row of
    proportional, and its rows are drawn at random, seeded."""
    if days.len() <= limit:
        return pl.Series([True] * days.len(), dtype=pl.Boolean)
    counts = pl.DataFrame({"day": days}).group_by("day").len().sort("day")
    rows = counts.get_column("len").to_numpy().astype(np.int64)
    quota, remainder = np.divmod(rows * limit, days.len())
    quota[np.argsort(-remainder, kind="stable")[: limit - int(quota.sum())]] += 1
    draw = np.random.default_rng(seed or 0).random(days.len())
    return (
        pl.DataFrame({"day": days, "draw": draw})
        .select(
            pl.col("draw").rank("ordinal").over("day")
            <= pl.col("day").replace_strict(counts.get_column("day"), quota, return_dtype=pl.Int64)
        )
        .to_series()
    )


def stratified_sample(frame: pl.DataFrame, days: pl.Series, limit: int, seed: int | None) -> pl.DataFrame:
    """`limit` rows of `frame` (all when it has no more), in frame order (`stratified_keep`)."""
    if frame.height <= limit:
        return frame
    return frame.filter(stratified_keep(days, limit, seed))


def training_rows(spec: ModelSpec, frame: pl.LazyFrame, timestamp: str) -> tuple[pl.DataFrame, int]:
    """The rows `train_model` reads, collected without the rest: the labelled rows of the test
    window and of the train window, the latter sampled to `max_train_rows` as `train_model`
    would; and the train window's rows before sampling.

    Only the day of every row is read whole (4 bytes a row); a bounded model then holds its
    sample and its test window, whatever the feature set's size. `frame` must scan in a stable
    order (the rows are chosen by position).
    """
    labelled = frame.with_columns(target_expression(spec.target).alias(TARGET)).filter(pl.col(TARGET).is_not_null())
    days = labelled.select(pl.col(timestamp).dt.date()).collect().to_series()
    train_window, test_window = split_windows(days, spec.split)
    in_train = days.is_between(train_window.start, train_window.end).to_numpy()
    keep = days.is_between(test_window.start, test_window.end).to_numpy() | in_train
    available = int(in_train.sum())
    if spec.max_train_rows is not None and available > spec.max_train_rows:
        train_positions = np.flatnonzero(in_train)
        sampled = stratified_keep(days.filter(pl.Series(in_train)), spec.max_train_rows, spec.seed).to_numpy()
        keep[train_positions[~sampled]] = False
    positions = pl.Series(ROW, np.flatnonzero(keep), dtype=pl.UInt32)
    rows = labelled.with_row_index(ROW).filter(pl.col(ROW).is_in(positions)).drop(ROW, TARGET).collect()
    return rows, available


def _estimator(
    name: str, info: EstimatorInfo, params: dict[str, Any], seed: int | None, categorical_mask: list[bool]
) -> Any:
    cls = getattr(importlib.import_module(info.module), name)
    kwargs = dict(params)
    if info.seeded and seed is not None:
        kwargs["random_state"] = seed
    if name.startswith("HistGradientBoosting"):
        kwargs["categorical_features"] = categorical_mask if any(categorical_mask) else None
    return cls(**kwargs)


def build_pipeline(spec: ModelSpec, categorical: list[str], numeric: list[str]) -> Any:
    """Preprocessing chosen by the estimator's needs, then the estimator, as one Pipeline."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    info = ESTIMATORS[spec.estimator.name]
    native_missing = spec.estimator.name.startswith("HistGradientBoosting")
    if info.encoding == "onehot":
        encoder = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False)
    else:
        missing = np.nan if native_missing else -1
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value",
            unknown_value=missing,
            encoded_missing_value=missing,
            max_categories=250 if native_missing else None,
        )
    numeric_steps: list[tuple[str, Any]] = []
    if not native_missing:
        numeric_steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    if info.scale:
        numeric_steps.append(("scale", StandardScaler()))
    numeric_transform = Pipeline(numeric_steps) if numeric_steps else "passthrough"
    transformers = []
    if categorical:
        transformers.append(("categorical", encoder, categorical))
    if numeric:
        transformers.append(("numeric", numeric_transform, numeric))
    mask = [True] * len(categorical) + [False] * len(numeric)
    estimator = _estimator(spec.estimator.name, info, spec.estimator_params(), spec.seed, mask)
    return Pipeline(
        [("prepare", ColumnTransformer(transformers, verbose_feature_names_out=False)), ("estimator", estimator)]
    )


def baseline_for(task: str) -> Any:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    return DummyClassifier(strategy="prior") if task == "classification" else DummyRegressor(strategy="mean")


def input_frame(frame: pl.DataFrame, features: list[str]) -> pl.DataFrame:
    """The estimator's input: booleans as 0/1 floats, categoricals as strings, the rest as is."""
    exprs = []
    for name in features:
        dtype = frame.schema[name]
        if dtype == pl.Boolean:
            exprs.append(pl.col(name).cast(pl.Float64))
        elif dtype in (pl.Categorical, pl.Enum):
            exprs.append(pl.col(name).cast(pl.String))
        else:
            exprs.append(pl.col(name))
    return frame.select(exprs)


def categorical_features(frame: pl.DataFrame, features: list[str]) -> list[str]:
    return [f for f in features if frame.schema[f] in (pl.String, pl.Categorical, pl.Enum)]


def score_frame(pipeline: Any, task: str, inputs: pl.DataFrame) -> np.ndarray:
    if task == "classification":
        return pipeline.predict_proba(inputs)[:, 1]
    return pipeline.predict(inputs)


def evaluate(task: str, metrics: list[str], y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    from sklearn import metrics as m

    out: dict[str, float] = {}
    if task == "classification":
        predicted = (scores >= threshold).astype(int)
        both = len(np.unique(y)) == 2
        # sklearn takes zero_division in {"warn", 0.0, 1.0, nan}; its inferred type says str only.
        table = {
            "roc_auc": lambda: m.roc_auc_score(y, scores) if both else float("nan"),
            "log_loss": lambda: m.log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1]),
            "precision": lambda: m.precision_score(y, predicted, zero_division=0.0),  # pyright: ignore[reportArgumentType]
            "recall": lambda: m.recall_score(y, predicted, zero_division=0.0),  # pyright: ignore[reportArgumentType]
            "f1": lambda: m.f1_score(y, predicted, zero_division=0.0),  # pyright: ignore[reportArgumentType]
            "accuracy": lambda: m.accuracy_score(y, predicted),
            "brier": lambda: m.brier_score_loss(y, scores),
        }
    else:
        table = {
            "rmse": lambda: float(np.sqrt(m.mean_squared_error(y, scores))),
            "mae": lambda: m.mean_absolute_error(y, scores),
            "r2": lambda: m.r2_score(y, scores),
        }
    for name in metrics:
        out[name] = float(table[name]())
    return out


def _importances(
    pipeline: Any, inputs: pl.DataFrame, y: np.ndarray, task: str, features: list[str], seed: int | None
) -> dict[str, float]:
    """Permutation importance on a sample of the test window: the score lost when one feature is
    shuffled (ROC AUC for classification, R² for regression), averaged over three shuffles."""
    from sklearn.metrics import r2_score, roc_auc_score

    rng = np.random.default_rng(seed or 0)
    if inputs.height > IMPORTANCE_SAMPLE:
        index = np.sort(rng.choice(inputs.height, IMPORTANCE_SAMPLE, replace=False))
        inputs, y = inputs[index], y[index]
    if task == "classification" and len(np.unique(y)) < 2:
        return {}
    metric = roc_auc_score if task == "classification" else r2_score
    base = metric(y, score_frame(pipeline, task, inputs))
    importances: dict[str, float] = {}
    for feature in features:
        losses = []
        for _ in range(3):
            shuffled = inputs.with_columns(pl.col(feature).shuffle(seed=int(rng.integers(1 << 31))))
            losses.append(base - metric(y, score_frame(pipeline, task, shuffled)))
        importances[feature] = float(np.mean(losses))
    return importances


def train_model(
    spec: ModelSpec, frame: pl.DataFrame, timestamp: str, features: list[str], train_rows_available: int | None = None
) -> TrainingResult:
    """Fit on the train window, evaluate model and baseline on the test window.

    `train_rows_available`: the train window's rows when `frame` holds them sampled already
    (`training_rows`); counted in `frame` otherwise."""
    labelled = frame.with_columns(target_expression(spec.target).alias(TARGET)).filter(pl.col(TARGET).is_not_null())
    days = labelled.get_column(timestamp).dt.date()
    train_window, test_window = split_windows(days, spec.split)
    in_window = lambda w: days.is_between(w.start, w.end)  # noqa: E731
    train = labelled.filter(in_window(train_window))
    test = labelled.filter(in_window(test_window))
    available = train.height if train_rows_available is None else train_rows_available
    if spec.max_train_rows is not None:
        train = stratified_sample(train, train.get_column(timestamp).dt.date(), spec.max_train_rows, spec.seed)
    if train.is_empty() or test.is_empty():
        raise TrainingError(
            f"empty split: {train.height} training rows in {train_window}, {test.height} test rows in "
            f"{test_window} (data covers {days.min()}..{days.max()})"
        )
    y_train = train.get_column(TARGET).to_numpy()
    y_test = test.get_column(TARGET).to_numpy()
    if spec.task == "classification" and len(np.unique(y_train)) < 2:
        raise TrainingError(f"the training window {train_window} holds only one class")

    categorical = categorical_features(train, features)
    numeric = [f for f in features if f not in categorical]
    ordered = categorical + numeric
    x_train, x_test = input_frame(train, ordered), input_frame(test, ordered)

    pipeline = build_pipeline(spec, categorical, numeric)
    pipeline.fit(x_train, y_train)
    baseline = baseline_for(spec.task).fit(x_train, y_train)

    metric_names = spec.metric_names()
    test_scores = score_frame(pipeline, spec.task, x_test)
    metrics = evaluate(spec.task, metric_names, y_test, test_scores, spec.threshold)
    baseline_metrics = evaluate(
        spec.task, metric_names, y_test, score_frame(baseline, spec.task, x_test), spec.threshold
    )
    slices = slice_metrics(spec, test, y_test, test_scores)
    reference = None
    if spec.monitor.drift.enabled:
        sample = reference_sample(x_train, spec.monitor.drift.reference_rows, spec.seed)
        reference = sample.with_columns(
            pl.Series(SCORE_COLUMN, score_frame(pipeline, spec.task, sample), dtype=pl.Float64)
        )
    return TrainingResult(
        pipeline=pipeline,
        metrics=metrics,
        baseline_metrics=baseline_metrics,
        train_window=train_window,
        test_window=test_window,
        train_rows=train.height,
        test_rows=test.height,
        positive_rate=float(y_train.mean()) if spec.task == "classification" else None,
        data_sha256=frame_sha256(train.select([*ordered, TARGET])),
        features=ordered,
        categorical=categorical,
        importances=_importances(pipeline, x_test, y_test, spec.task, ordered, spec.seed),
        slice_metrics=slices,
        reference=reference,
        train_rows_available=available,
    )


BOOTSTRAP_SAMPLES = 200


# Resamples are drawn and judged a few at a time: samples × rows floats for a large slice would
# not fit in memory (200 × 700k rows ≈ 1.1 GB per array).
BOOTSTRAP_CELLS = 10_000_000


def bootstrap_chunks(rows: int, seed: int | None, cells: int = BOOTSTRAP_CELLS) -> Iterator[np.ndarray]:
    """How often each row is drawn in each bootstrap resample, seeded, in blocks of resamples
    (≤ `cells` values each); the blocks stacked are the same draws whatever `cells` is."""
    rng = np.random.default_rng(seed or 0)
    step = max(1, min(BOOTSTRAP_SAMPLES, cells // max(rows, 1)))
    for done in range(0, BOOTSTRAP_SAMPLES, step):
        size = min(step, BOOTSTRAP_SAMPLES - done)
        yield rng.multinomial(rows, np.full(rows, 1 / rows), size=size).astype(float)


def bootstrap_weights(rows: int, seed: int | None) -> np.ndarray:
    """Every resample's draws per row (samples × rows), seeded."""
    return np.vstack(list(bootstrap_chunks(rows, seed)))


def weighted_metric(metric: str, y: np.ndarray, scores: np.ndarray, threshold: float, w: np.ndarray) -> np.ndarray:
    """A metric on every resample at once (`w`: draws per row, one resample a row), vectorized
    because a slice's interval takes hundreds of resamples. The metrics a slice rule may judge."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "roc_auc":
            order = np.argsort(scores, kind="stable")
            sorted_scores, positive = scores[order], y[order] == 1
            starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
            pos = np.add.reduceat(w[:, order] * positive, starts, axis=1)  # per tied score group
            neg = np.add.reduceat(w[:, order] * ~positive, starts, axis=1)
            below = np.cumsum(neg, axis=1) - neg
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
        if metric == "r2":
            total = w.sum(axis=1)
            mean = (w * y).sum(axis=1) / total
            residual = (w * (y - scores) ** 2).sum(axis=1)
            return 1 - residual / (w * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
        predicted, actual = scores >= threshold, y == 1
        tp, fp = w @ (predicted & actual), w @ (predicted & ~actual)
        fn, tn = w @ (~predicted & actual), w @ (~predicted & ~actual)
        table = {
            "accuracy": lambda: (tp + tn) / (tp + tn + fp + fn),
            "precision": lambda: np.where(tp + fp > 0, tp / (tp + fp), 0.0),
            "recall": lambda: np.where(tp + fn > 0, tp / (tp + fn), 0.0),
            "f1": lambda: np.where(tp > 0, 2 * tp / (2 * tp + fp + fn), 0.0),
        }
        return table[metric]()


def bootstrap_interval(
    metric: str,
    y: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    confidence: float,
    seed: int | None,
    cells: int = BOOTSTRAP_CELLS,
) -> tuple[float, float]:
    """A seeded percentile bootstrap interval of a metric (resamples where it is undefined, e.g.
    one class only for ROC AUC, are dropped; nan when most are)."""
    values = np.concatenate(
        [weighted_metric(metric, y, scores, threshold, w) for w in bootstrap_chunks(len(y), seed, cells)]
    )
    values = values[np.isfinite(values)]
    if len(values) < BOOTSTRAP_SAMPLES // 2:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def slice_metrics(
    spec: ModelSpec, test: pl.DataFrame, y: np.ndarray, scores: np.ndarray
) -> dict[str, dict[str, dict[str, float]]]:
    """Test metrics per value of each slice column: its rows always; metrics and, for the metrics
    promotion judges, a bootstrap interval when it has at least `slice_min_rows` rows."""
    promotion = spec.promotion
    out: dict[str, dict[str, dict[str, float]]] = {}
    for column in spec.slices:
        values = test.get_column(column)
        out[column] = {}
        for value in values.drop_nulls().unique().sort().to_list():
            mask = (values == value).fill_null(False).to_numpy()
            rows = float(mask.sum())
            if rows < promotion.slice_min_rows:
                out[column][str(value)] = {"rows": rows}
                continue
            metrics = evaluate(spec.task, spec.metric_names(), y[mask], scores[mask], spec.threshold)
            for metric in promotion.slice_min:
                metrics[f"{metric}_low"], metrics[f"{metric}_high"] = bootstrap_interval(
                    metric, y[mask], scores[mask], spec.threshold, promotion.slice_confidence, spec.seed
                )
            out[column][str(value)] = {**metrics, "rows": rows}
    return out


def better(metric: str, value: float, other: float) -> bool:
    return value < other if metric in LOWER_IS_BETTER else value > other
