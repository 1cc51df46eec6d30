"""Processes a test starts in the background (dagster-daemon, dagster dev): found and stopped by
a marker in their environment, so nothing the test started outlives it, at any depth."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

# Redis' 16 databases: 0 is the default broker's, 14 the benchmark's; the rest are the tests'.
REDIS_TEST_DATABASES = [n for n in range(1, 16) if n != 14]


@contextmanager
def redis_broker() -> Iterator[str]:
    """A Redis database no other running test (of any worktree or pytest worker) brokers on: its
    URL, flushed before and after. Held by an exclusive lock on a file in the machine's temp
    folder, so a Celery worker of another test can never take this test's tasks."""
    import redis

    deadline = time.monotonic() + 600
    while True:
        for number in REDIS_TEST_DATABASES:
            lock = open(Path(tempfile.gettempdir()) / f"factory-test-redis-{number}.lock", "w")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.close()
                continue
            url = f"redis://127.0.0.1:6379/{number}"
            try:
                redis.Redis.from_url(url).flushdb()  # what a killed test may have left
                yield url
            finally:
                try:
                    redis.Redis.from_url(url).flushdb()
                finally:
                    lock.close()
            return
        if time.monotonic() > deadline:
            raise AssertionError("every Redis test database is held by another test")
        time.sleep(1)


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@contextmanager
def background(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """Start `args` in its own session; on exit stop it and all its descendants (SIGTERM, then
    SIGKILL: `dagster dev` ignores SIGTERM for a while) and check that none is left."""
    marker = uuid.uuid4().hex
    with open(log, "w") as out:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**env, "FACTORY_TEST_MARKER": marker},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            for pid in processes_with(marker):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while processes_with(marker) and time.monotonic() < deadline:
                time.sleep(0.5)
        process.wait(timeout=10)
    assert processes_with(marker) == [], "a process started by the test is still running"


WORKER_READY_SECONDS = 120


def wait_ready(logs: list[Path]) -> None:
    """Wait until every `factory worker` writing one of `logs` says Celery's ` ready.`"""
    deadline = time.monotonic() + WORKER_READY_SECONDS
    while time.monotonic() < deadline:
        if all(" ready." in log.read_text() for log in logs):
            return
        time.sleep(1)
    raise AssertionError("workers not ready:\n" + "\n".join(log.read_text()[-2000:] for log in logs))


@contextmanager
def celery_workers(count: int, env: dict[str, str], cwd: Path, folder: Path) -> Iterator[list[Path]]:
    """`count` `factory worker`s (w1, w2, ...) serving `env`'s broker, ready; their logs in `folder`.
    All are stopped, and checked gone, on exit."""
    factory = str(Path(sys.executable).with_name("factory"))
    logs = [folder / f"worker{n}.log" for n in range(1, count + 1)]
    with ExitStack() as stack:
        for n, log in enumerate(logs, start=1):
            stack.enter_context(background([factory, "worker", "--name", f"w{n}"], env, cwd, log))
        wait_ready(logs)
        yield logs


def wait_until(found: Callable[[], object], what: str, seconds: float = 300, log: Path | None = None) -> Any:
    """`found()`'s first truthy value within `seconds`; else an AssertionError saying `what` did
    not happen (with the end of `log`, the background process's, when given)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := found():
            return value
        time.sleep(0.5)
    tail = f"; log:\n{log.read_text()[-3000:]}" if log is not None else ""
    raise AssertionError(f"{what} within {seconds:g} s{tail}")
