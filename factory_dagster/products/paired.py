"""The paired comparison of two models scored on the same rows: a seeded bootstrap interval of the
difference of a metric, both models' metric computed on each resample of the same rows.

Resampling rows jointly keeps what both models find easy or hard in every resample, so the
interval measures the difference itself, not the noise of each model's metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factory_dagster.products.model import LOWER_IS_BETTER
from factory_dagster.products.training import BOOTSTRAP_SAMPLES, bootstrap_chunks, evaluate, weighted_metric

LOSSES = ("rmse", "mae", "brier", "log_loss")  # means of a per-row loss


@dataclass(frozen=True)
class PairedComparison:
    """The candidate against the champion on the same rows; `improvement` is signed so that
    positive means the candidate is better (for a lower-is-better metric, champion − candidate)."""

    metric: str
    candidate: float
    champion: float
    improvement: float
    low: float  # the improvement's bootstrap interval at `confidence`
    high: float
    confidence: float
    rows: int
    resamples: int  # those where the metric is defined for both models

    def beats(self, min_improvement: float) -> bool:
        """The whole interval lies above `min_improvement` (identical models never do: their
        improvement is 0 in every resample)."""
        return bool(np.isfinite(self.low)) and self.low > min_improvement


def resampled_metric(metric: str, y: np.ndarray, scores: np.ndarray, threshold: float, w: np.ndarray) -> np.ndarray:
    """A metric on every resample at once (`w`: draws per row, one resample a row)."""
    if metric not in LOSSES:
        return weighted_metric(metric, y, scores, threshold, w)
    if metric == "log_loss":
        p = np.clip(scores, 1e-15, 1 - 1e-15)
        loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    elif metric == "mae":
        loss = np.abs(y - scores)
    else:
        loss = (y - scores) ** 2
    mean = (w @ loss) / w.sum(axis=1)
    return np.sqrt(mean) if metric == "rmse" else mean


def paired_bootstrap(
    metric: str,
    task: str,
    y: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    threshold: float,
    confidence: float,
    seed: int | None,
) -> PairedComparison:
    """The candidate's improvement over the champion on the rows `y`, with a seeded percentile
    bootstrap interval (resamples where the metric is undefined for either model are dropped;
    nan when most are)."""
    y, candidate, champion = (np.asarray(a, dtype=float) for a in (y, candidate, champion))
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    differences = np.concatenate(
        [
            sign
            * (
                resampled_metric(metric, y, candidate, threshold, w)
                - resampled_metric(metric, y, champion, threshold, w)
            )
            for w in bootstrap_chunks(len(y), seed)
        ]
    )
    differences = differences[np.isfinite(differences)]
    cand = evaluate(task, [metric], y, candidate, threshold)[metric]
    champ = evaluate(task, [metric], y, champion, threshold)[metric]
    low = high = float("nan")
    if len(differences) >= BOOTSTRAP_SAMPLES // 2:
        tail = (1 - confidence) / 2 * 100
        low, high = (float(v) for v in np.percentile(differences, [tail, 100 - tail]))
    return PairedComparison(metric, cand, champ, sign * (cand - champ), low, high, confidence, len(y), len(differences))
