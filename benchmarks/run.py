"""The factory against its floor at N times the flights, plus the bookkeeping benchmarks, in one run.

    .venv/bin/python -m benchmarks.run --scale 1 30 [180] [--work DIR] [--out benchmarks/results.md]

For each scale: the floor (benchmarks/floor.py) and `factory build` of the flights line (the shipped
line at 1x, a copy reading generated data above, see benchmarks/flights_data.py), each in its own
process tree, timed, with the peak of the tree's summed RSS (polled from /proc); the Dagster events
the build wrote (counted in the instance's event log storage); the row counts and test metrics of
both. Then a line of about 5,000 daily partitions (benchmarks/partition_line.py): its build time and
Dagster storage size; a one-day `factory backfill` of the 1x flights home; the cold definitions load.
Each figure is checked against the targets of issue 9 and printed PASS or FAIL; everything is
written as markdown to `--out`. No timing here is a test: the machine's load moves every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from benchmarks.definitions_load import LOAD, cold
from benchmarks.flights_data import REPO, real_flights, scaled_flights_root, write_scaled
from benchmarks.partition_line import partition_root

GIB = 1024**3
FACTORY = [str(Path(sys.executable).parent / "factory")]  # the CLI installed beside this interpreter
BACKFILL_DAY = "2013-06-03"
DAY = ["--start", BACKFILL_DAY, "--end", BACKFILL_DAY]
# Issue 9's targets (item 2), on a 2-core / 24 GiB machine.
TARGET_1X_SECONDS, TARGET_1X_RATIO, TARGET_30X_RATIO = 40.0, 4.0, 1.2
TARGET_180X_RSS = 8 * GIB
TARGET_PARTITION_SECONDS, TARGET_PARTITION_STORAGE = 60.0, 100 * 1024**2
TARGET_BACKFILL_SECONDS, TARGET_LOAD_SECONDS = 10.0, 2.0


@dataclass
class Measured:
    """One command's wall time, the peak summed RSS of its process tree, and how it ended."""

    seconds: float
    peak_rss: int
    returncode: int | None  # None: killed at the timeout
    output: str
    cpu_seconds: float = 0.0  # user + system time of the tree: what another load on the machine moves least

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def tree_rss(root_pid: int) -> int:
    """The summed resident memory of a process and its descendants (bytes), from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(command: list[str], env: dict[str, str], timeout: float | None = None, log: Path | None = None) -> Measured:
    """Run `command` in its own session; wall time and the peak RSS of its tree (polled every 0.2 s)."""
    out = open(log, "w", encoding="utf-8") if log else subprocess.DEVNULL
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    peak = 0
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(process.pid))
            done.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        code: int | None = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        code = None
    seconds = time.perf_counter() - started
    done.set()
    poller.join()
    if log:
        out.close()  # type: ignore[union-attr]
    text = log.read_text(encoding="utf-8", errors="replace") if log else ""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(seconds, peak, code, text, cpu)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a measured command: no DAGSTER_HOME or factory variables of the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "FACTORY_HOME", "FACTORY_ROOT", "FACTORY_LINES")
    }
    return {**env, "DAGSTER_DISABLE_TELEMETRY": "true", "GX_ANALYTICS_ENABLED": "false", **extra}


def dagster_events(home: Path) -> dict[str, int]:
    """Events in the factory home's Dagster instance, in total and by type (read page by page)."""
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(home / "dagster"))
    counts: dict[str, int] = {"total": 0}
    try:
        for run in instance.get_runs():
            cursor = None
            while True:
                page = instance.get_records_for_run(run.run_id, cursor=cursor, limit=5000)
                for record in page.records:
                    kind = record.event_log_entry.dagster_event_type
                    name = kind.value if kind is not None else "LOG_MESSAGE"
                    counts[name] = counts.get(name, 0) + 1
                    counts["total"] += 1
                cursor = page.cursor
                if not page.has_more:
                    break
    finally:
        instance.dispose()
    return counts


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def factory_outputs(home: Path) -> dict[str, Any]:
    """Row counts of the flights line's products in a factory home, and the served model's metrics."""
    import duckdb
    import polars as pl

    out: dict[str, Any] = {"rows": {}, "metrics": {}}
    warehouse = home / "warehouse.duckdb"
    if warehouse.exists():
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            for table in ("raw.flights", "main.fct_flights"):
                try:
                    out["rows"][table.removeprefix("main.")] = con.sql(f"select count(*) from {table}").fetchall()[0][0]
                except duckdb.Error:
                    pass
        finally:
            con.close()
    for kind, name in (("features", "flight_features"), ("predictions", "delay_predictions")):
        files = list((home / kind / name).rglob("*.parquet"))
        if files:
            scan = pl.scan_parquet(files)
            if "role" in scan.collect_schema().names():  # a serving slot's: the served rows, not the shadow
                scan = scan.filter(pl.col("role") == "champion")
            out["rows"][name] = scan.select(pl.len()).collect().item()
    registry = home / "models" / "delay_classifier" / "registry.json"
    if registry.exists():  # the version trained last (served or not), as the registry records it
        versions = list(json.loads(registry.read_text(encoding="utf-8")).get("versions", {}).values())
        if versions:
            out["metrics"] = max(versions, key=lambda v: v["created_at"]).get("details", {}).get("metrics", {})
    return out


def prepare(root: Path) -> None:
    subprocess.run([*FACTORY, "prepare", "--root", str(root)], env=clean_env(), check=True, capture_output=True)


@dataclass
class ScaleResult:
    scale: int
    rows: int
    floor: Measured
    floor_json: dict[str, Any]
    factory: Measured
    events: dict[str, int]
    outputs: dict[str, Any]
    storage: int

    @property
    def scored(self) -> bool:
        return bool(self.outputs["rows"].get("delay_predictions"))

    @property
    def floor_seconds(self) -> float:
        """The floor's wall time, less its scoring when the factory scored nothing (promotion failed)."""
        return self.floor.seconds - (0.0 if self.scored else self.floor_json.get("steps", {}).get("score", 0.0))


def run_scale(scale: int, work: Path, timeout: float | None, max_train_rows: int | None = None) -> ScaleResult:
    folder = work / f"flights_{scale}x"
    for stale in ("home", "floor", "root"):
        shutil.rmtree(folder / stale, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    base = real_flights()
    if scale == 1:
        root, rows = REPO, base.height
    else:
        data = folder / "flights.parquet"
        rows = pq.ParquetFile(data).metadata.num_rows if data.exists() else 0
        if rows != scale * base.height:  # data written by an earlier run at this scale is kept
            print(f"[{scale}x] generating the data ...", flush=True)
            rows = write_scaled(scale, data, base)
        del base
        root = scaled_flights_root(folder / "root", scale, data, max_train_rows=max_train_rows)
    prepare(root)
    print(f"[{scale}x] floor ...", flush=True)
    floor = measure(
        [
            *[sys.executable, "-m", "benchmarks.floor", "--root", str(root), "--work", str(folder / "floor"), "--json"],
            *(["--max-train-rows", str(max_train_rows)] if max_train_rows is not None and scale > 1 else []),
        ],
        clean_env(PYTHONPATH=os.environ.get("PYTHONPATH", "")),
        timeout,
        folder / "floor.log",
    )
    floor_json = next((json.loads(line) for line in floor.output.splitlines() if line.startswith("{")), {})
    shutil.rmtree(folder / "floor", ignore_errors=True)
    print(f"[{scale}x] floor {floor.seconds:.1f} s; factory build ...", flush=True)
    home = folder / "home"
    factory = measure(
        [*FACTORY, "build", "--root", str(root), "--line", "flights", "--home", str(home)],
        clean_env(),
        timeout,
        folder / "build.log",
    )
    print(f"[{scale}x] factory {factory.seconds:.1f} s (exit {factory.returncode})", flush=True)
    return ScaleResult(
        scale,
        rows,
        floor,
        floor_json,
        factory,
        dagster_events(home),
        factory_outputs(home),
        folder_size(home / "dagster"),
    )


@dataclass
class Bookkeeping:
    partition_rows: int = 0
    partition_days: int = 0
    partition: Measured | None = None
    partition_storage: int = 0
    partition_events: dict[str, int] = field(default_factory=dict)
    backfill: Measured | None = None
    load_seconds: float = 0.0


def run_bookkeeping(work: Path, flights_home: Path | None, days: int, timeout: float, repeat: int) -> Bookkeeping:
    result = Bookkeeping(partition_days=days)
    root, result.partition_rows = partition_root(work / "many_days" / "root", days)
    prepare(root)
    print(f"[partitions] building {days:,} daily partitions (timeout {timeout:.0f} s) ...", flush=True)
    home = work / "many_days" / "home"
    shutil.rmtree(home, ignore_errors=True)  # a build from nothing: an earlier run's home would make it a rebuild
    result.partition = measure(
        [*FACTORY, "build", "--root", str(root), "--home", str(home)],
        clean_env(),
        timeout,
        work / "many_days" / "build.log",
    )
    result.partition_storage = folder_size(home / "dagster")
    result.partition_events = dagster_events(home) if result.partition.ok else {}
    if flights_home is not None:
        print(f"[backfill] one day ({BACKFILL_DAY}) of the 1x flights home ...", flush=True)
        result.backfill = measure(
            [*FACTORY, "backfill", "--root", str(REPO), "--line", "flights", "--home", str(flights_home), *DAY],
            clean_env(),
            timeout,
            work / "backfill.log",
        )
    print("[load] cold definitions load ...", flush=True)
    env = clean_env(FACTORY_HOME=str(work / "load_home"), FACTORY_ROOT=str(REPO))
    cold(LOAD, env)  # the first load lets GX parse the suites: later loads are the steady state
    result.load_seconds = statistics.median(cold(LOAD, env) for _ in range(repeat))
    return result


def gib(value: int) -> str:
    return f"{value / GIB:.2f} GiB"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(scales: list[ScaleResult], books: Bookkeeping | None, note: str) -> str:
    lines = [f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {machine()}.", ""]
    if note:
        lines += [note, ""]
    lines += [
        "| scale | rows | factory build | floor | ratio | CPU factory / floor | factory peak RSS | floor peak RSS "
        "| Dagster events (planned) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in scales:
        built = (
            "" if s.factory.ok else (" (killed)" if s.factory.returncode is None else f" (exit {s.factory.returncode})")
        )
        ratio = s.factory.seconds / s.floor_seconds if s.floor_seconds else float("nan")
        floor_note = "" if s.scored else " (no scoring)"
        lines.append(
            f"| {s.scale}x | {s.rows:,} | {s.factory.seconds:.1f} s{built} | {s.floor_seconds:.1f} s{floor_note} | "
            f"{ratio:.2f}x | {s.factory.cpu_seconds:.0f} s / {s.floor.cpu_seconds:.0f} s | "
            f"{gib(s.factory.peak_rss)} | {gib(s.floor.peak_rss)} | "
            f"{s.events.get('total', 0):,} ({s.events.get('ASSET_MATERIALIZATION_PLANNED', 0):,}) |"
        )
    lines += ["", "Floor steps and agreement (rows and test metrics, floor / factory):", ""]
    for s in scales:
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in s.floor_json.get("steps", {}).items())
        lines.append(f"- {s.scale}x floor: {steps}; factory's Dagster storage {s.storage / 1024**2:.1f} MiB")
        floor_rows, factory_rows = s.floor_json.get("rows", {}), s.outputs["rows"]
        for name in ("raw.flights", "fct_flights", "flight_features", "delay_predictions"):
            a, b = floor_rows.get(name), factory_rows.get(name)
            lines.append(
                f"  - {name}: {a if a is None else f'{a:,}'} / {b if b is None else f'{b:,}'}"
                + (" (equal)" if a == b else " (DIFFER)")
            )
        floor_metrics, factory_metrics = s.floor_json.get("metrics", {}), s.outputs["metrics"]
        for name, value in floor_metrics.items():
            other = factory_metrics.get(name)
            lines.append(f"  - {name}: {value:.4f} / " + ("n/a" if other is None else f"{other:.4f}"))
    if books is not None:
        p = books.partition
        assert p is not None
        lines += [
            "",
            f"- partition line: {books.partition_rows:,} rows over {books.partition_days:,} daily partitions: "
            f"build {p.seconds:.1f} s{'' if p.ok else ' (killed at the timeout)' if p.returncode is None else f' (exit {p.returncode})'}, "
            f"Dagster storage {books.partition_storage / 1024**2:.1f} MiB, events {books.partition_events.get('total', 'n/a')}",
        ]
        if books.backfill is not None:
            lines.append(
                f"- one-day `factory backfill` of the 1x home: {books.backfill.seconds:.1f} s (exit {books.backfill.returncode})"
            )
        lines.append(f"- cold definitions load (median): {books.load_seconds:.2f} s")
    lines += ["", "| target | measured | verdict |", "| --- | --- | --- |"]
    for name, measured, ok in targets(scales, books):
        lines.append(f"| {name} | {measured} | {verdict(ok)} |")
    return "\n".join(lines) + "\n"


def targets(scales: list[ScaleResult], books: Bookkeeping | None) -> list[tuple[str, str, bool]]:
    """Issue 9's targets that this run measured: (target, measured, met)."""
    out: list[tuple[str, str, bool]] = []
    by_scale = {s.scale: s for s in scales}
    if (s := by_scale.get(1)) is not None:
        out.append(
            (
                f"1x: factory build <= {TARGET_1X_SECONDS:.0f} s",
                f"{s.factory.seconds:.1f} s",
                s.factory.ok and s.factory.seconds <= TARGET_1X_SECONDS,
            )
        )
        ratio = s.factory.seconds / s.floor_seconds
        out.append(
            (f"1x: <= {TARGET_1X_RATIO:.0f}x the floor", f"{ratio:.2f}x", s.factory.ok and ratio <= TARGET_1X_RATIO)
        )
    if (s := by_scale.get(30)) is not None:
        ratio = s.factory.seconds / s.floor_seconds
        out.append(
            (f"30x: <= {TARGET_30X_RATIO}x the floor", f"{ratio:.2f}x", s.factory.ok and ratio <= TARGET_30X_RATIO)
        )
    if (s := by_scale.get(180)) is not None:
        out.append(
            (
                "180x: completes, factory peak RSS <= 8 GiB",
                f"{gib(s.factory.peak_rss)}, exit {s.factory.returncode}",
                s.factory.ok and s.factory.peak_rss <= TARGET_180X_RSS,
            )
        )
    if books is not None and books.partition is not None:
        p = books.partition
        out.append(
            (
                f"{books.partition_days:,} partitions build <= {TARGET_PARTITION_SECONDS:.0f} s",
                f"{p.seconds:.1f} s" + ("" if p.ok else " (not finished)"),
                p.ok and p.seconds <= TARGET_PARTITION_SECONDS,
            )
        )
        out.append(
            (
                "its Dagster storage < 100 MB",
                f"{books.partition_storage / 1024**2:.1f} MiB" + ("" if p.ok else " (at the kill)"),
                p.ok and books.partition_storage < TARGET_PARTITION_STORAGE,
            )
        )
        if books.backfill is not None:
            out.append(
                (
                    f"one-day backfill <= {TARGET_BACKFILL_SECONDS:.0f} s",
                    f"{books.backfill.seconds:.1f} s",
                    books.backfill.ok and books.backfill.seconds <= TARGET_BACKFILL_SECONDS,
                )
            )
        out.append(
            (
                f"cold definitions load <= {TARGET_LOAD_SECONDS:.0f} s",
                f"{books.load_seconds:.2f} s",
                books.load_seconds <= TARGET_LOAD_SECONDS,
            )
        )
    return out


def machine() -> str:
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0"
    )
    code = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return f"{platform.machine()}, {os.cpu_count()} cores, {int(memory) / 1024**2:.1f} GiB, Python {platform.python_version()}, code {code or 'unknown'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 30])
    parser.add_argument("--work", type=Path, default=Path("/tmp/factory-bench"), help="where data, roots and homes go")
    parser.add_argument("--out", type=Path, help="markdown results file (default: print only)")
    parser.add_argument("--days", type=int, default=5000, help="daily partitions of the partition line")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before a flights build or floor is killed")
    parser.add_argument(
        "--partition-timeout", type=float, default=300, help="seconds before the partition build is killed"
    )
    parser.add_argument(
        "--max-train-rows",
        type=int,
        default=1_000_000,
        help="above 1x, every model of the line and the floor train on at most this many rows (0: all)",
    )
    parser.add_argument("--no-bookkeeping", action="store_true", help="skip the partition line, backfill and load")
    parser.add_argument("--repeat", type=int, default=3, help="cold definitions loads (the median is kept)")
    parser.add_argument("--note", default="", help="a line written above the results (e.g. what else ran)")
    parser.add_argument("--append", action="store_true", help="add this run's results to --out instead of replacing it")
    args = parser.parse_args()
    args.max_train_rows = args.max_train_rows or None
    args.work.mkdir(parents=True, exist_ok=True)
    scales = [run_scale(scale, args.work, args.timeout, args.max_train_rows) for scale in args.scale]
    flights_home = args.work / "flights_1x" / "home" if 1 in args.scale else None
    books = (
        None
        if args.no_bookkeeping
        else run_bookkeeping(args.work, flights_home, args.days, args.partition_timeout, args.repeat)
    )
    bounded = (
        f"Above 1x every model of the line and the floor train on at most {args.max_train_rows:,} rows "
        "(`max_train_rows`: the factory's time-stratified sample, the floor's even one)."
        if args.max_train_rows and any(scale > 1 for scale in args.scale)
        else ""
    )
    text = report(scales, books, " ".join(filter(None, [args.note, bounded])))
    print(text)
    if args.out:
        before = args.out.read_text(encoding="utf-8") if args.append and args.out.exists() else "# Benchmark results\n"
        args.out.write_text(f"{before}\n## Run of {', '.join(f'{s}x' for s in args.scale)}\n\n{text}", encoding="utf-8")


if __name__ == "__main__":
    main()
