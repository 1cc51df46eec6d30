"""A run's events read back from the Dagster instance, page by page.

A run over thousands of partitions writes a materialization per partition and asset: readers
(the run report, the OpenLineage emit, the progress display) fold them as they come and never
hold all of them.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

PAGE = 1000


def run_records(
    instance: dg.DagsterInstance, run_id: str, kinds: set[dg.DagsterEventType], cursor: str | None = None
) -> Iterator[dg.EventLogRecord]:
    """The run's events of `kinds` after `cursor`, oldest first, PAGE at a time."""
    while True:
        connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=kinds, limit=PAGE)
        yield from connection.records
        if not connection.has_more or connection.cursor == cursor:
            return
        cursor = connection.cursor
