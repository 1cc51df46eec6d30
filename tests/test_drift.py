"""Drift statistics against scipy's own computations, on generated data: planted drift and no
drift, each test Evidently's rules choose, PSI, empty batches, constant and all-null columns,
unseen categories and tiny references."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from scipy.spatial import distance

from factory_dagster.products.drift import (
    DriftSettings,
    choose_test,
    column_drift,
    drift_by_batch,
    prepare_reference,
)
from factory_dagster.products.drift_report import render

RNG = np.random.default_rng(11)


def _judge(reference: pl.Series, current: pl.Series, settings: DriftSettings | None = None):
    settings = settings or DriftSettings()
    prepared = prepare_reference(reference.to_frame())[reference.name]
    return column_drift(prepared, current, settings)


def test_small_numeric_reference_gets_ks_and_its_p_value_is_scipys() -> None:
    ref = RNG.normal(0, 1, 800)
    same, shifted = RNG.normal(0, 1, 500), RNG.normal(0.6, 1, 500)
    calm = _judge(pl.Series("x", ref), pl.Series("x", same))
    moved = _judge(pl.Series("x", ref), pl.Series("x", shifted))
    assert (calm.test, moved.test) == ("ks", "ks")
    assert calm.score == pytest.approx(stats.ks_2samp(ref, same).pvalue, rel=1e-12)
    assert moved.score == pytest.approx(stats.ks_2samp(ref, shifted).pvalue, rel=1e-12)
    assert not calm.drifted and moved.drifted
    assert moved.score < 0.05 <= calm.score


def test_large_numeric_reference_gets_normalized_wasserstein() -> None:
    ref = RNG.normal(5, 2, 5000)
    same, shifted = RNG.normal(5, 2, 3000), RNG.normal(6, 2, 3000)
    calm = _judge(pl.Series("x", ref), pl.Series("x", same))
    moved = _judge(pl.Series("x", ref), pl.Series("x", shifted))
    assert (calm.test, moved.test) == ("wasserstein", "wasserstein")
    assert moved.score == pytest.approx(stats.wasserstein_distance(ref, shifted) / np.std(ref), rel=1e-9)
    assert calm.score == pytest.approx(stats.wasserstein_distance(ref, same) / np.std(ref), rel=1e-9)
    assert calm.score < 0.1 <= moved.score
    assert moved.drifted and not calm.drifted


def test_small_categorical_reference_gets_chi_square() -> None:
    ref = RNG.choice(["a", "b", "c"], 900, p=[0.5, 0.3, 0.2])
    shifted = RNG.choice(["a", "b", "c"], 400, p=[0.3, 0.3, 0.4])
    result = _judge(pl.Series("g", ref), pl.Series("g", shifted))
    assert result.test == "chisquare"
    ref_counts = np.array([(ref == k).sum() for k in "abc"])
    obs = np.array([(shifted == k).sum() for k in "abc"])
    expected = ref_counts * len(shifted) / len(ref)
    assert result.score == pytest.approx(stats.chisquare(obs, expected).pvalue, rel=1e-9)
    assert result.drifted


def test_binary_small_reference_gets_the_z_test_equal_to_a_2x2_chi_square() -> None:
    ref = RNG.choice([True, False], 700, p=[0.3, 0.7])
    for p in (0.3, 0.45):
        cur = RNG.choice([True, False], 600, p=[p, 1 - p])
        result = _judge(pl.Series("b", ref), pl.Series("b", cur))
        assert result.test == "z"
        table = np.array([[ref.sum(), (~ref).sum()], [cur.sum(), (~cur).sum()]])
        oracle = stats.chi2_contingency(table, correction=False).pvalue  # chi2 = z² for 2×2
        assert result.score == pytest.approx(oracle, rel=1e-9)
        assert result.drifted == (oracle < 0.05)


def test_large_categorical_reference_gets_jensen_shannon_and_unseen_categories_count() -> None:
    ref = RNG.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2])
    cur = RNG.choice(["a", "b", "d"], 2000, p=[0.2, 0.3, 0.5])
    result = _judge(pl.Series("g", ref), pl.Series("g", cur))
    assert result.test == "jensenshannon"
    keys = ["a", "b", "c", "d"]
    r = np.array([(ref == k).mean() for k in keys])
    c = np.array([(cur == k).mean() for k in keys])
    r, c = np.where(r == 0, 0.0001, r), np.where(c == 0, 0.0001, c)
    assert result.score == pytest.approx(distance.jensenshannon(r, c), rel=1e-9)
    assert result.drifted and "unseen categories: d" in result.note


def test_an_unseen_category_in_a_small_reference_is_drift_by_chi_square() -> None:
    ref = pl.Series("g", ["a", "b", "c"] * 20)
    result = _judge(ref, pl.Series("g", ["a", "b", "c", "z"] * 5))
    assert (result.test, result.score, result.drifted) == ("chisquare", 0.0, True)


def test_psi_is_opt_in_and_equals_the_formula_on_reference_deciles() -> None:
    ref = RNG.normal(0, 1, 3000)
    cur = RNG.normal(0.5, 1, 2000)
    settings = DriftSettings(method="psi")
    result = _judge(pl.Series("x", ref), pl.Series("x", cur), settings)
    assert result.test == "psi"
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    bins = lambda v: np.bincount(np.searchsorted(edges[1:-1], v, side="right"), minlength=10) / len(v)  # noqa: E731
    r, c = bins(ref), bins(cur)
    r, c = np.where(r == 0, 0.0001, r), np.where(c == 0, 0.0001, c)
    assert result.score == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert result.drifted
    # per column, a test overrides the method
    assert _judge(pl.Series("x", ref), pl.Series("x", cur), DriftSettings(tests={"x": "ks"})).test == "ks"


def test_constant_all_null_and_empty_columns() -> None:
    constant = _judge(pl.Series("k", [3.0] * 50), pl.Series("k", [3.0] * 20))
    assert (constant.kind, constant.test, constant.drifted) == ("categorical", "z", False)
    assert constant.score == 1.0
    moved_constant = _judge(pl.Series("k", [3.0] * 50), pl.Series("k", [4.0] * 20))
    assert moved_constant.drifted
    null_now = _judge(pl.Series("x", RNG.normal(0, 1, 50)), pl.Series("x", [None] * 10, dtype=pl.Float64))
    assert (null_now.test, null_now.drifted) == ("null_share", True)
    null_ref = _judge(pl.Series("x", [None] * 10, dtype=pl.Float64), pl.Series("x", [1.0, 2.0]))
    assert (null_ref.test, null_ref.drifted, null_ref.note) == ("none", False, "the reference has no values")
    empty = _judge(pl.Series("x", RNG.normal(0, 1, 50)), pl.Series("x", [], dtype=pl.Float64))
    assert (empty.test, empty.drifted) == ("none", False)


def test_numbers_with_few_values_are_judged_as_categories() -> None:
    reference = prepare_reference(pl.DataFrame({"hour": [1, 2, 3, 4, 5] * 10, "x": list(range(50))}))
    assert reference["hour"].kind == "categorical" and choose_test(reference["hour"], DriftSettings()) == "chisquare"
    assert reference["x"].kind == "numeric" and choose_test(reference["x"], DriftSettings()) == "ks"
    big = DriftSettings(small_reference_rows=10)
    assert choose_test(reference["hour"], big) == "jensenshannon"
    # A batch of the same integers (any integer type) has the reference's categories: no drift, p = 1.
    for dtype in (pl.Int32, pl.Int64, pl.UInt8):
        same = column_drift(reference["hour"], pl.Series("hour", [1, 2, 3, 4, 5] * 4, dtype=dtype), DriftSettings())
        assert (same.test, same.drifted, same.score) == ("chisquare", False, pytest.approx(1.0)), same
    assert choose_test(reference["x"], big) == "wasserstein"


def test_dataset_drift_per_batch_in_one_pass_with_empty_batches() -> None:
    reference = pl.DataFrame(
        {
            "x": RNG.normal(0, 1, 600),
            "y": RNG.normal(0, 1, 600),
            "g": RNG.choice(["a", "b", "c"], 600),
        }
    )
    calm = pl.DataFrame({"x": RNG.normal(0, 1, 300), "y": RNG.normal(0, 1, 300), "g": RNG.choice(["a", "b", "c"], 300)})
    moved = pl.DataFrame(
        {"x": RNG.normal(2, 1, 300), "y": RNG.normal(-2, 1, 300), "g": RNG.choice(["a", "b", "c"], 300)}
    )
    current = pl.concat([calm, moved])
    batches = pl.Series(["d1"] * 300 + ["d2"] * 300)
    d1, d2, d3 = drift_by_batch(reference, current, batches, DriftSettings(), ["d1", "d2", "d3"])
    assert not d1.drifted
    assert d2.drifted and d2.share == pytest.approx(2 / 3)
    assert [c.column for c in d2.ordered()][:2] == ["x", "y"]  # drifted first
    assert (d3.rows, d3.drifted, d3.share) == (0, False, 0.0)
    for col in ("x", "y"):
        oracle = stats.ks_2samp(reference[col].to_numpy(), moved[col].to_numpy()).pvalue
        assert next(c for c in d2.columns if c.column == col).score == pytest.approx(oracle, rel=1e-12)
    page = render("Drift on d2", d2)
    assert page.index(">x <") < page.index(">g <") and "Dataset drift" in page and "<svg" in page


@pytest.mark.parametrize(("n_ref", "n_cur", "shift"), [(7, 50, 0.0), (1000, 1, 3.0), (3000, 900, -40.0), (50, 50, 0.0)])
def test_the_prepared_wasserstein_distance_is_scipys_with_ties_and_tiny_samples(
    n_ref: int, n_cur: int, shift: float
) -> None:
    from factory_dagster.products.drift import wasserstein_distance

    ref = np.round(RNG.normal(1000, 3, n_ref), 1)  # rounded: ties within and across samples
    cur = np.round(RNG.normal(1000 + shift, 3, n_cur), 1)
    prepared = prepare_reference(pl.DataFrame({"x": np.concatenate([ref, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])}))["x"]
    everything = np.concatenate([ref, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    assert wasserstein_distance(prepared, cur) == pytest.approx(stats.wasserstein_distance(everything, cur), rel=1e-9)


def ks_p(reference: object, current: object) -> float:
    return float(stats.ks_2samp(reference, current).pvalue)  # pyright: ignore[reportAttributeAccessIssue]


def chi2_p(table: np.ndarray) -> float:
    return float(stats.chi2_contingency(table, correction=False).pvalue)  # pyright: ignore[reportAttributeAccessIssue]


def test_tiny_references_constant_batches_and_non_finite_values_against_scipy() -> None:
    # a six-value reference: still numeric (more than 5 distinct values), KS exactly scipy's
    tiny = np.array([1.0, 2.5, 3.0, 4.5, 5.0, 7.0])
    batch = RNG.normal(4, 2, 40)
    result = _judge(pl.Series("x", tiny), pl.Series("x", batch))
    assert (result.kind, result.test) == ("numeric", "ks")
    assert result.score == pytest.approx(ks_p(tiny, batch), rel=1e-12)
    # a constant batch against a spread reference: KS and normalized Wasserstein are scipy's
    ref = RNG.normal(0, 1, 400)
    constant = np.full(25, 0.3)
    ks = _judge(pl.Series("x", ref), pl.Series("x", constant))
    assert ks.score == pytest.approx(ks_p(ref, constant), rel=1e-12) and ks.drifted
    big_ref = RNG.normal(0, 1, 2000)
    ws = _judge(pl.Series("x", big_ref), pl.Series("x", constant))
    assert ws.score == pytest.approx(stats.wasserstein_distance(big_ref, constant) / np.std(big_ref), rel=1e-9)
    # NaN, infinities and nulls are left out on both sides: the p-value is scipy's on the finite values
    dirty = pl.Series("x", [*batch.tolist(), float("nan"), float("inf"), None], dtype=pl.Float64)
    clean = _judge(pl.Series("x", tiny), dirty)
    assert clean.current_rows == len(batch)
    assert clean.score == pytest.approx(ks_p(tiny, batch), rel=1e-12)
    # a two-row categorical reference: the Z test, equal to scipy's 2x2 chi-square without correction
    two = _judge(pl.Series("g", ["a", "b"]), pl.Series("g", ["a"] * 30 + ["b"] * 10))
    oracle = chi2_p(np.array([[1, 1], [30, 10]]))
    assert two.test == "z" and two.score == pytest.approx(oracle, rel=1e-9)
    # one row scored: judged, against scipy
    single = _judge(pl.Series("x", ref), pl.Series("x", [5.0]))
    assert single.score == pytest.approx(ks_p(ref, [5.0]), rel=1e-12)


def test_an_all_null_column_and_unseen_categories_count_in_the_dataset_share() -> None:
    reference = pl.DataFrame(
        {"x": RNG.normal(0, 1, 300), "g": RNG.choice(["a", "b", "c"], 300), "y": RNG.normal(0, 1, 300)}
    )
    current = pl.DataFrame(
        {
            "x": pl.Series([None] * 50, dtype=pl.Float64),  # the feed lost the column's values
            "g": RNG.choice(["a", "b", "z"], 50),  # a category the reference never saw
            "y": RNG.normal(0, 1, 50),
        }
    )
    (day,) = drift_by_batch(reference, current, pl.Series(["d"] * 50), DriftSettings(), ["d"])
    by_column = {c.column: c for c in day.columns}
    assert (by_column["x"].test, by_column["x"].drifted) == ("null_share", True)
    assert (by_column["g"].test, by_column["g"].score, by_column["g"].drifted) == ("chisquare", 0.0, True)
    assert by_column["g"].note == "unseen categories: z"
    oracle = ks_p(reference["y"].to_numpy(), current["y"].to_numpy())
    assert by_column["y"].score == pytest.approx(oracle, rel=1e-12)
    assert day.share == pytest.approx((2 + (oracle < 0.05)) / 3) and day.drifted
