"""Gate engines head to head: GX 1.x (pandas) against the polars fast path, same suite, same frame.

    .venv/bin/python benchmarks/gate_engines.py [--rows 10000000] [--repeat 3]

Prints the best wall time of each engine and checks that both reach the same verdicts.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import polars as pl

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

from factory_dagster.gates.engines import gx_engine, polars_engine
from factory_dagster.gates.suites import Expectation

SUITE = [
    Expectation(0, "expect_column_values_to_not_be_null", {"column": "id"}),
    Expectation(1, "expect_column_values_to_be_unique", {"column": "id"}),
    Expectation(
        2,
        "expect_column_values_to_be_between",
        {"column": "distance", "min_value": 0, "strict_min": True, "max_value": 6000},
    ),
    Expectation(3, "expect_column_values_to_be_in_set", {"column": "origin", "value_set": ["EWR", "JFK", "LGA"]}),
    Expectation(4, "expect_column_values_to_not_be_null", {"column": "delay", "mostly": 0.95}),
    Expectation(5, "expect_column_mean_to_be_between", {"column": "delay", "min_value": 0, "max_value": 30}),
]


def frame(rows: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    delay = rng.normal(12, 40, rows)
    delay[rng.random(rows) < 0.02] = np.nan
    return pl.DataFrame(
        {
            "id": rng.permutation(rows),  # unsorted keys: no sorted fast path
            "distance": rng.integers(17, 5000, rows),
            "origin": rng.choice(["EWR", "JFK", "LGA"], rows),
            "delay": delay,
        }
    )


def best(fn, repeat: int) -> tuple[float, list]:
    times: list[float] = []
    result: list = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = frame(args.rows)
    gx_engine.validate(data.head(10), SUITE)  # import GX and build its context outside the timing
    gx_time, gx_result = best(lambda: gx_engine.validate(data, SUITE), args.repeat)
    pl_time, pl_result = best(lambda: polars_engine.validate(data, SUITE), args.repeat)
    same = [
        a.success == b.success and a.unexpected_count == b.unexpected_count
        for a, b in zip(gx_result, pl_result, strict=True)
    ]
    print(f"{args.rows:,} rows x {len(SUITE)} expectations (best of {args.repeat})")
    print(f"  gx (pandas, incl. polars->pandas): {gx_time:7.2f} s")
    print(f"  polars fast path:                  {pl_time:7.2f} s  ({gx_time / pl_time:.1f}x faster)")
    print(f"  same verdicts and counts: {all(same)}")


if __name__ == "__main__":
    main()
