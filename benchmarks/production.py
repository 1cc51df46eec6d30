"""`factory build` of one line, embedded vs production with 1 and 2 Celery workers, timed.

    .venv/bin/python -m benchmarks.production [--line seattle_weather] [--work DIR]

Each build starts from an empty factory home; production ones use a fresh PostgreSQL database
(the Dagster instance) and Redis database number, dropped and flushed afterwards. Prints one
markdown table: wall-clock seconds of the whole `factory build` command and whether it succeeded.
Needs the machine's PostgreSQL (user postgres, trust) and Redis (`make services`). No timing here
is a test: the machine's load moves every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parent.parent
FACTORY = str(Path(sys.executable).with_name("factory"))
REDIS_DB = 14  # the benchmark's own broker database, flushed after each build


def admin(sql: str) -> None:
    connection = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def wait_ready(logs: list[Path], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not all(" ready." in log.read_text() for log in logs):
        if time.monotonic() > deadline:
            raise SystemExit("workers not ready: " + " ".join(str(log) for log in logs))
        time.sleep(1)


def build(line: str, work: Path, workers: int) -> tuple[float, bool]:
    """Seconds of one `factory build --line <line>`; `workers` 0 is the embedded profile."""
    home = work / f"home_{workers}_{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FACTORY_HOME": str(home), "PYTHONPATH": str(REPO)}
    env.pop("DAGSTER_HOME", None)
    database = f"factory_bench_{uuid.uuid4().hex[:10]}"
    processes: list[subprocess.Popen] = []
    if workers:
        broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
        admin(f'create database "{database}"')
        env |= {
            "FACTORY_PROFILE": "production",
            "FACTORY_PG_USER": "postgres",
            "FACTORY_PG_DBNAME": database,
            "FACTORY_CELERY_BROKER": broker,
        }
        logs = [work / f"{database}_worker{i}.log" for i in range(workers)]
        for log in logs:
            with open(log, "w") as out:
                processes.append(
                    subprocess.Popen([FACTORY, "worker"], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
                )
        wait_ready(logs)
    else:
        env["FACTORY_PROFILE"] = "embedded"
    try:
        started = time.monotonic()
        done = subprocess.run([FACTORY, "build", "--line", line], env=env, cwd=REPO, capture_output=True)
        return time.monotonic() - started, done.returncode == 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        if workers:
            admin(f'drop database if exists "{database}" with (force)')
            import redis

            redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}").flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--line", default="seattle_weather")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="factory_bench_prod_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"| `factory build --line {args.line}` | seconds | succeeded |\n|---|---:|---|", flush=True)
    for workers, label in ((0, "embedded (in process)"), (1, "production, 1 worker"), (2, "production, 2 workers")):
        seconds, ok = build(args.line, work, workers)
        print(f"| {label} | {seconds:.1f} | {'yes' if ok else 'no'} |", flush=True)


if __name__ == "__main__":
    main()
