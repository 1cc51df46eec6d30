"""Slices judged with their uncertainty: a seeded bootstrap interval per slice (each resample's
metric equal to scikit-learn's on the same rows), a minimum slice size, and a verdict that only
fails a slice whose whole interval is below the threshold."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as skm

from factory_dagster.products.model import ModelSpec, promotion_failures, slice_table, slice_verdict
from factory_dagster.products.training import (
    BOOTSTRAP_SAMPLES,
    bootstrap_interval,
    bootstrap_weights,
    slice_metrics,
    weighted_metric,
)

RNG = np.random.default_rng(5)


def model(**promotion) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "description": "d",
            "owner": "team:t",
            "features": {"fs": "all"},
            "target": {"column": "y", "op": "eq", "value": 1},
            "estimator": {"name": "LogisticRegression"},
            "split": {"train_days": 2, "test_days": 1},
            "seed": 3,
            "metrics": ["roc_auc", "accuracy"],
            "slices": ["grp"],
            "promotion": {"slice_min": {"roc_auc": 0.6}, **promotion},
        }
    )


@pytest.mark.parametrize("metric", ["roc_auc", "accuracy", "precision", "recall", "f1", "r2"])
def test_every_resample_equals_scikit_learn_on_the_same_rows(metric: str) -> None:
    y = RNG.integers(0, 2, 250)
    scores = np.round(np.clip(RNG.normal(0.4 + 0.2 * y, 0.2), 0, 1), 2)  # rounded: ties count half
    weights = bootstrap_weights(len(y), 9)
    values = weighted_metric(metric, y.astype(float), scores, 0.5, weights)
    oracle = {
        "roc_auc": skm.roc_auc_score,
        "accuracy": lambda a, s: skm.accuracy_score(a, s >= 0.5),
        "precision": lambda a, s: skm.precision_score(a, s >= 0.5, zero_division=0.0),  # pyright: ignore[reportArgumentType]
        "recall": lambda a, s: skm.recall_score(a, s >= 0.5, zero_division=0.0),  # pyright: ignore[reportArgumentType]
        "f1": lambda a, s: skm.f1_score(a, s >= 0.5, zero_division=0.0),  # pyright: ignore[reportArgumentType]
        "r2": skm.r2_score,
    }[metric]
    expected = []
    for row in weights:
        drawn = np.repeat(np.arange(len(y)), row.astype(int))
        expected.append(oracle(y[drawn], scores[drawn]))
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    low, high = bootstrap_interval(metric, y.astype(float), scores, 0.5, 0.9, 9)
    # drawn a few resamples at a time (bounded memory), the interval is the same
    assert bootstrap_interval(metric, y.astype(float), scores, 0.5, 0.9, 9, cells=7 * len(y)) == (low, high)
    assert (low, high) == pytest.approx(tuple(np.percentile(expected, [5, 95])), rel=1e-10)
    assert bootstrap_interval(metric, y.astype(float), scores, 0.5, 0.9, 9) == (low, high)  # seeded


def test_one_class_resamples_leave_no_interval() -> None:
    assert all(np.isnan(bootstrap_interval("roc_auc", np.ones(60), RNG.random(60), 0.5, 0.95, 1)))


def _slices(spec: ModelSpec, groups: dict[str, tuple[int, float]]) -> dict:
    """Test rows per group value: (rows, how well scores separate the classes)."""
    frames, ys, scores = [], [], []
    for value, (rows, signal) in groups.items():
        y = RNG.integers(0, 2, rows)
        ys.append(y)
        scores.append(np.clip(RNG.normal(0.5 + signal * (y - 0.5), 0.25), 0, 1))
        frames.append(pl.DataFrame({"grp": [value] * rows}))
    return slice_metrics(spec, pl.concat(frames), np.concatenate(ys), np.concatenate(scores))


def test_a_tiny_slice_neither_blocks_nor_passes_and_a_clearly_bad_one_blocks() -> None:
    spec = model()
    slices = _slices(spec, {"good": (2000, 0.6), "tiny": (40, -0.6), "bad": (2000, -0.2), "noisy": (120, 0.1)})
    grp = slices["grp"]
    assert grp["tiny"] == {"rows": 40.0}  # below slice_min_rows: measured size only
    assert slice_verdict(grp["tiny"], "roc_auc", 0.6) == "too small"
    assert slice_verdict(grp["good"], "roc_auc", 0.6) == "pass"
    assert slice_verdict(grp["noisy"], "roc_auc", 0.6) == "inconclusive"
    assert grp["noisy"]["roc_auc_low"] < 0.6 < grp["noisy"]["roc_auc_high"]
    assert slice_verdict(grp["bad"], "roc_auc", 0.6) == "fail"
    bad = grp["bad"]
    failures = promotion_failures(spec, {"roc_auc": 0.7, "accuracy": 0.6}, {"roc_auc": 0.5, "accuracy": 0.5}, slices)
    assert failures == [
        f"roc_auc {bad['roc_auc']:.4f} < required 0.6 on grp=bad "
        f"(95% CI {bad['roc_auc_low']:.4f}..{bad['roc_auc_high']:.4f}, 2000 rows)"
    ]
    table = slice_table(spec, slices)
    assert "| grp=tiny | 40 | roc_auc |  |  | too small |" in table
    assert "| grp=noisy | 120 | roc_auc |" in table and "inconclusive" in table
    # the minimum size is declared: with 30, the tiny slice is measured and judged on its interval
    small = _slices(model(slice_min_rows=30), {"tiny": (40, 0.0)})
    assert "roc_auc_low" in small["grp"]["tiny"]
    assert BOOTSTRAP_SAMPLES >= 200
