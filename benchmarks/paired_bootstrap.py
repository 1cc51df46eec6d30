"""The cost of judging a slot candidate: the paired bootstrap of a metric difference on a
flights-sized test window (61 days of flights: about 56,000 rows at 1x), and larger ones.

Synthetic scores of two models on the same rows; wall time (after a warm-up that imports
scikit-learn) and, in a second run, the peak of traced allocations (numpy's arrays) per metric. The interval is 200 resamples drawn in blocks of at most 10 million
cells, so memory stays bounded whatever the window's size.

    python -m benchmarks.paired_bootstrap [--rows 56000 560000] [--metric roc_auc log_loss]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from factory_dagster.products.paired import paired_bootstrap


def measure(rows: int, metric: str) -> tuple[float, float, float, float]:
    """(seconds, peak MiB, interval low, high) for one paired bootstrap on `rows` rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows).astype(float)
    champion = np.clip(0.5 + 0.2 * (y - 0.5) + rng.normal(0, 0.25, rows), 0.001, 0.999)
    candidate = np.clip(champion + 0.02 * (y - 0.5) + rng.normal(0, 0.05, rows), 0.001, 0.999)
    judge = lambda: paired_bootstrap(metric, "classification", y, candidate, champion, 0.5, 0.95, 0)  # noqa: E731
    started = time.perf_counter()
    result = judge()
    seconds = time.perf_counter() - started
    tracemalloc.start()  # a second run for the memory: tracing slows numpy's allocations down
    judge()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, result.low, result.high


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[56_000, 560_000])
    parser.add_argument("--metric", nargs="+", default=["roc_auc", "log_loss"])
    args = parser.parse_args()
    measure(1_000, args.metric[0])  # warm up: the first call imports scikit-learn's metrics
    print("| rows | metric | seconds | peak MiB | 95% interval |")
    print("| ---: | --- | ---: | ---: | --- |")
    for rows in args.rows:
        for metric in args.metric:
            seconds, peak, low, high = measure(rows, metric)
            print(f"| {rows:,} | {metric} | {seconds:.2f} | {peak:.0f} | {low:+.4f}..{high:+.4f} |")


if __name__ == "__main__":
    main()
