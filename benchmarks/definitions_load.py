"""Cold definitions load: a fresh interpreter loading the code location, against its floor.

The floor is a fresh interpreter importing only the libraries the definitions cannot do without
(dagster, dagster-dbt with dbt-core, polars, pydantic): what is left is the factory's own cost
(reading the specs and the dbt manifest, building the assets). Run from the repository root:

    .venv/bin/python benchmarks/definitions_load.py [--repeat 5] [--line NAME ...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

FLOOR = "import dagster, dagster_dbt, polars, pydantic"
LOAD = "from factory_dagster.definitions import defs; defs.resolve_asset_graph()"


def cold(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description="Cold definitions load against its floor.")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--line", action="append", help="lines to load (default: factory.yaml's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "FACTORY_HOME": home, "DAGSTER_DISABLE_TELEMETRY": "true"}
        if args.line:
            env["FACTORY_LINES"] = ",".join(args.line)
        cold(LOAD, env)  # the first load remembers the suites GX parsed: later loads are the steady state
        floor = [cold(FLOOR, env) for _ in range(args.repeat)]
        load = [cold(LOAD, env) for _ in range(args.repeat)]
    f, d = statistics.median(floor), statistics.median(load)
    print(f"cold definitions load, median of {args.repeat}: {d:.2f} s")
    print(f"floor (imports only: {FLOOR.removeprefix('import ')}): {f:.2f} s")
    print(f"the factory's own cost: {d - f:.2f} s ({d / f:.2f}x the floor)")


if __name__ == "__main__":
    main()
