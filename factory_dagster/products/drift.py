"""Data drift statistics: one served model's training reference against the rows it scored.

The test per column follows Evidently's DataDriftPreset rules, so its verdicts can be compared:

- reference of at most `small_reference_rows` (1,000) non-null values: a numeric column with more
  than 5 distinct reference values gets the two-sample Kolmogorov–Smirnov test; any other column
  (strings, booleans, numbers with at most 5 values) the chi-square goodness-of-fit test, or the
  two-proportion Z test when it has at most 2 values. Drift when the p-value < 0.05.
- larger reference: the Wasserstein distance normalized by the reference's standard deviation
  (numeric) or the Jensen–Shannon distance (categorical). Drift when the distance >= 0.1.
- PSI (population stability index, reference deciles or categories) on request. Drift when >= 0.1.

The dataset drifts when the share of drifted columns reaches `drift_share` (0.5). The reference
is prepared once (sorted values, category counts, PSI bins); each current batch is read once.
scipy is imported inside the functions: loading definitions never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

DriftTest = Literal["ks", "chisquare", "z", "wasserstein", "jensenshannon", "psi"]
P_VALUE_TESTS = frozenset({"ks", "chisquare", "z"})  # drift when the p-value is below the threshold
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.1,
}
NUMERIC_TESTS = frozenset({"ks", "wasserstein"})
MAX_CATEGORICAL_NUMBERS = 5  # a numeric column with at most this many values is judged as categories
EMPTY_SHARE = 0.0001  # stands in for an empty bin or an unseen category (Evidently's choice)
HISTOGRAM_BINS = 20
HISTOGRAM_CATEGORIES = 20


@dataclass(frozen=True)
class DriftSettings:
    """How columns are judged; the defaults are Evidently's."""

    small_reference_rows: int = 1000
    drift_share: float = 0.5
    method: Literal["auto", "psi"] = "auto"
    tests: Mapping[str, DriftTest] = field(default_factory=dict)  # per column, overriding `method`
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def threshold(self, test: str) -> float:
        return self.thresholds.get(test, DEFAULT_THRESHOLDS[test])


@dataclass
class Histogram:
    """Reference and current shares per bin (numeric) or category, for the report."""

    labels: list[str]
    reference: list[float]
    current: list[float]


@dataclass
class ColumnDrift:
    column: str
    kind: Literal["numeric", "categorical"]
    test: str  # one of DriftTest, or "none" when the column could not be judged
    score: float | None  # the p-value of a test, or the distance
    threshold: float | None
    drifted: bool
    reference_rows: int
    current_rows: int  # non-null values
    note: str = ""
    histogram: Histogram | None = None

    @property
    def judged(self) -> bool:
        return self.test != "none"


@dataclass
class DatasetDrift:
    """Every column's verdict on one batch (a day), and the dataset's."""

    batch: str
    rows: int
    columns: list[ColumnDrift]
    drift_share: float  # the threshold

    @property
    def judged(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.judged]

    @property
    def share(self) -> float:
        judged = self.judged
        return sum(c.drifted for c in judged) / len(judged) if judged else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.judged) and self.share >= self.drift_share

    def ordered(self) -> list[ColumnDrift]:
        """Drifted columns first, then by how far they are from their threshold."""
        return sorted(self.columns, key=lambda c: (not c.drifted, not c.judged, c.column))


@dataclass
class ReferenceColumn:
    """One reference column prepared once: its values, kind, categories and PSI bins."""

    name: str
    kind: Literal["numeric", "categorical"]
    values: np.ndarray  # numeric: the sorted non-null values; categorical: as many placeholders
    counts: dict[str, int]  # categorical: rows per category
    std: float
    edges: np.ndarray  # PSI bins: reference deciles (numeric)
    sums: np.ndarray = field(default_factory=lambda: np.zeros(1))  # numeric: prefix sums of the centred values
    center: float = 0.0
    centred: np.ndarray = field(default_factory=lambda: np.zeros(0))  # numeric: values minus their mean
    histogram_edges: np.ndarray = field(default_factory=lambda: np.zeros(0))
    histogram_shares: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric()


def _category_counts(series: pl.Series) -> dict[str, int]:
    """Rows per category (nulls left out), counted by polars in one pass.

    Numbers are named as Float64 on both sides (an Int32 batch judged against its Float64
    reference must find the same categories: "1.0", never "1")."""
    values = series.drop_nulls()
    if _is_numeric(values.dtype):
        values = values.cast(pl.Float64)
        values = values.filter(values.is_finite())
    counts = values.cast(pl.String).alias("value").value_counts(name="rows")
    return dict(zip(counts.get_column("value").to_list(), counts.get_column("rows").to_list(), strict=True))


def prepare_reference(reference: pl.DataFrame) -> dict[str, ReferenceColumn]:
    """Each reference column ready to compare against (read once per run, not per batch)."""
    prepared: dict[str, ReferenceColumn] = {}
    for name in reference.columns:
        series = reference.get_column(name)
        numeric = _is_numeric(series.dtype)
        values = series.drop_nulls()
        if numeric:
            values = values.cast(pl.Float64).filter(values.cast(pl.Float64).is_finite())
        distinct = values.n_unique() if len(values) else 0
        if numeric and distinct > MAX_CATEGORICAL_NUMBERS:
            array = np.sort(values.to_numpy().astype(float))
            edges = np.unique(np.quantile(array, np.linspace(0, 1, 11)))
            center = float(array.mean())
            centred = array - center
            histogram_edges = np.histogram_bin_edges(array, bins=HISTOGRAM_BINS)
            counts, _ = np.histogram(array, bins=histogram_edges)
            prepared[name] = ReferenceColumn(
                name,
                "numeric",
                array,
                {},
                float(np.std(array)),
                edges,
                np.concatenate([[0.0], np.cumsum(centred)]),
                center,
                centred,
                histogram_edges,
                counts / counts.sum(),
            )
        else:
            counts = _category_counts(values)
            prepared[name] = ReferenceColumn(
                name, "categorical", np.empty(sum(counts.values()), dtype=np.int8), counts, 0.0, np.array([])
            )
    return prepared


def choose_test(reference: ReferenceColumn, settings: DriftSettings) -> DriftTest:
    """The test a column gets: declared per column, PSI when asked, else Evidently's rule."""
    if reference.name in settings.tests:
        return settings.tests[reference.name]
    if settings.method == "psi":
        return "psi"
    small = len(reference.values) <= settings.small_reference_rows
    if reference.kind == "numeric":
        return "ks" if small else "wasserstein"
    if small:
        return "z" if len(reference.counts) <= 2 else "chisquare"
    return "jensenshannon"


def _shares(counts: Mapping[str, int], keys: list[str]) -> np.ndarray:
    total = sum(counts.values())
    shares = np.array([counts.get(k, 0) / total for k in keys], dtype=float)
    return np.where(shares == 0, EMPTY_SHARE, shares)


def chisquare_p(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """Chi-square goodness of fit of the current counts to the reference shares (over both's
    categories); a category the reference never saw makes the p-value 0."""
    from scipy import stats

    keys = sorted(set(reference) | set(current))
    scale = sum(current.values()) / sum(reference.values())
    expected = np.array([reference.get(k, 0) * scale for k in keys], dtype=float)
    observed = np.array([current.get(k, 0) for k in keys], dtype=float)
    if np.any((expected == 0) & (observed > 0)):
        return 0.0
    seen = expected > 0
    if seen.sum() < 2:
        return 1.0
    return float(stats.chisquare(observed[seen], expected[seen]).pvalue)


def z_test_p(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    """Two-sided two-proportion Z test on the share of the first category (of both's categories)."""
    from scipy import stats

    keys = sorted(set(reference) | set(current))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    p_ref, p_cur = reference.get(keys[0], 0) / n_ref, current.get(keys[0], 0) / n_cur
    pooled = (p_ref * n_ref + p_cur * n_cur) / (n_ref + n_cur)
    spread = np.sqrt(pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur))
    if spread == 0:
        return 1.0 if p_ref == p_cur else 0.0
    return float(2 * stats.norm.sf(abs(p_ref - p_cur) / spread))


def jensenshannon_distance(reference: Mapping[str, int], current: Mapping[str, int]) -> float:
    from scipy.spatial import distance

    keys = sorted(set(reference) | set(current))
    return float(distance.jensenshannon(_shares(reference, keys), _shares(current, keys)))


def wasserstein_distance(reference: ReferenceColumn, current: np.ndarray) -> float:
    """The 1-Wasserstein distance, the area between the two CDFs (scipy's `wasserstein_distance`),
    in O(current · log reference) from the prepared reference: on each step of the current CDF
    (a constant q), the reference CDF crosses q once, and its integral comes from prefix sums.
    Values are centred on the reference mean (the distance does not move), for precision."""
    ref = reference.centred
    cur = np.sort(current) - reference.center
    n_ref, n_cur = len(ref), len(cur)

    def integral(t: np.ndarray) -> np.ndarray:  # ∫_{-inf}^{t} F_ref(x) dx
        below = np.searchsorted(ref, t, side="right")
        return (below * t - reference.sums[below]) / n_ref

    start = np.minimum(ref[0], cur[0])
    lows = np.concatenate([[start], cur])
    highs = np.concatenate([cur, [max(ref[-1], cur[-1])]])
    levels = np.arange(n_cur + 1) / n_cur  # the current CDF on each step
    cross = np.ceil(levels * n_ref - 1e-9).astype(int)  # F_ref(x) >= q from ref[cross - 1] on
    at = np.where(cross <= 0, -np.inf, np.where(cross > n_ref, np.inf, ref[np.clip(cross - 1, 0, n_ref - 1)]))
    middle = np.clip(at, lows, highs)
    h_low, h_mid, h_high = integral(lows), integral(middle), integral(highs)
    area = levels * (middle - lows) - (h_mid - h_low) + (h_high - h_mid) - levels * (highs - middle)
    return float(area.sum())


def wasserstein_normalized(reference: ReferenceColumn, current: np.ndarray) -> float:
    return wasserstein_distance(reference, current) / max(reference.std, 0.001)


def psi(reference_shares: np.ndarray, current_shares: np.ndarray) -> float:
    return float(np.sum((current_shares - reference_shares) * np.log(current_shares / reference_shares)))


def _numeric_bins(values: np.ndarray, edges: np.ndarray) -> dict[str, int]:
    """Rows per reference-decile bin (values beyond the reference fall in the outer bins)."""
    inner = edges[1:-1]
    index = np.searchsorted(inner, values, side="right")
    return {str(i): int(n) for i, n in zip(*np.unique(index, return_counts=True), strict=True)}


def _histogram(reference: ReferenceColumn, current: np.ndarray, cur_counts: dict[str, int]) -> Histogram:
    if reference.kind == "numeric":  # the reference's bins; current values beyond them fall in the outer ones
        edges = reference.histogram_edges
        clipped = np.clip(current, edges[0], edges[-1])
        binned, _ = np.histogram(clipped, bins=edges)
        labels = [f"{edges[i]:.4g}" for i in range(len(edges) - 1)]
        return Histogram(labels, reference.histogram_shares.tolist(), (binned / max(binned.sum(), 1)).tolist())
    keys = sorted(set(reference.counts) | set(cur_counts), key=lambda k: -(reference.counts.get(k, 0)))
    keys = keys[:HISTOGRAM_CATEGORIES]
    ref_total, cur_total = max(sum(reference.counts.values()), 1), max(sum(cur_counts.values()), 1)
    return Histogram(
        keys, [reference.counts.get(k, 0) / ref_total for k in keys], [cur_counts.get(k, 0) / cur_total for k in keys]
    )


def column_drift(reference: ReferenceColumn, current: pl.Series, settings: DriftSettings) -> ColumnDrift:
    """One column's verdict on one batch."""
    test = choose_test(reference, settings)
    threshold = settings.threshold(test)
    n_ref = len(reference.values)
    counts: dict[str, int] = {}
    if reference.kind == "numeric":
        values = current.drop_nulls().cast(pl.Float64)
        values = values.filter(values.is_finite()).to_numpy().astype(float)
    else:
        counts = _category_counts(current)
        values = np.empty(sum(counts.values()), dtype=np.int8)  # only its length is read
    base = ColumnDrift(reference.name, reference.kind, "none", None, None, False, n_ref, len(values))
    if n_ref == 0:
        base.note = "the reference has no values"
        return base
    base.histogram = _histogram(reference, values, counts)
    if len(values) == 0:
        base.note = "no values" if current.len() == 0 else "every value is null, the reference has values"
        if current.len() > 0:
            base.test, base.score, base.threshold, base.drifted = "null_share", 1.0, None, True
        return base
    if test in NUMERIC_TESTS and reference.kind != "numeric":
        base.note = f"{test} needs a numeric column with more than {MAX_CATEGORICAL_NUMBERS} values"
        return base
    base.test, base.threshold = test, threshold
    if test == "ks":
        from scipy import stats

        base.score = float(stats.ks_2samp(reference.values, values).pvalue)  # pyright: ignore[reportAttributeAccessIssue]
    elif test == "wasserstein":
        base.score = wasserstein_normalized(reference, values)
    elif test == "psi" and reference.kind == "numeric":
        keys = [str(i) for i in range(max(len(reference.edges) - 1, 1))]
        base.score = psi(
            _shares(_numeric_bins(reference.values, reference.edges), keys),
            _shares(_numeric_bins(values, reference.edges), keys),
        )
    else:
        if test == "psi":
            keys = sorted(set(reference.counts) | set(counts))
            base.score = psi(_shares(reference.counts, keys), _shares(counts, keys))
        elif test == "chisquare":
            base.score = chisquare_p(reference.counts, counts)
        elif test == "z":
            if len(set(reference.counts) | set(counts)) > 2:
                base.note = "more than 2 categories: chi-square instead of the Z test"
                base.test, base.threshold = "chisquare", settings.threshold("chisquare")
                base.score = chisquare_p(reference.counts, counts)
            else:
                base.score = z_test_p(reference.counts, counts)
        else:
            base.score = jensenshannon_distance(reference.counts, counts)
        unseen = sorted(set(counts) - set(reference.counts))
        if unseen:
            base.note = f"unseen categories: {', '.join(unseen[:5])}" + (" …" if len(unseen) > 5 else "")
    assert base.score is not None and base.threshold is not None
    base.drifted = base.score < base.threshold if base.test in P_VALUE_TESTS else base.score >= base.threshold
    return base


def dataset_drift(
    reference: dict[str, ReferenceColumn], current: pl.DataFrame, settings: DriftSettings, batch: str
) -> DatasetDrift:
    """Every reference column judged on `current` (a column it lacks counts as all null)."""
    columns = [
        column_drift(
            ref,
            current.get_column(name) if name in current.columns else pl.Series(name, [None] * current.height),
            settings,
        )
        for name, ref in reference.items()
    ]
    return DatasetDrift(batch, current.height, columns, settings.drift_share)


def drift_by_batch(
    reference: pl.DataFrame, current: pl.DataFrame, batches: pl.Series, settings: DriftSettings, names: list[str]
) -> list[DatasetDrift]:
    """One verdict per batch label (a day), in `names` order; a batch without rows is judged empty."""
    prepared = prepare_reference(reference)
    parts = {
        str(key[0]): frame
        for key, frame in current.with_columns(batches.cast(pl.String).alias("__batch"))
        .partition_by("__batch", as_dict=True, include_key=False)
        .items()
    }
    return [
        dataset_drift(prepared, parts.get(name, current.clear()), settings, name)
        for name in names  # every batch asked for, including those without rows
    ]
