"""What a range run writes to the Dagster instance and how it is read back: one planned event per
asset, one materialization per partition carrying its own rows (never the window's table), and
readers that page through the events."""

from __future__ import annotations

import collections
import datetime as dt
from pathlib import Path

import dagster as dg
import pytest

from factory_dagster.execution.report import build_report
from factory_dagster.storage import events
from tests.conftest import Build, build_all

START = dt.date(2021, 3, 1)
DAYS = 45


def _write_line(root: Path) -> dict[str, int]:
    """A line with one partitioned source: day i holds i % 4 rows (some days none)."""
    line = root / "lines" / "readings"
    line.mkdir(parents=True)
    (root / "factory.yaml").write_text("lines: [readings]\n")
    rows, ident = ["id,day,value"], 0
    for i in range(DAYS):
        for _ in range(i % 4):
            rows.append(f"{ident},{START + dt.timedelta(days=i)},{ident * 0.5}")
            ident += 1
    (line / "readings.csv").write_text("\n".join(rows) + "\n")
    end = START + dt.timedelta(days=DAYS)
    (line / "line.yaml").write_text(
        f"""line:
  description: Readings over {DAYS} daily partitions.
partitions:
  daily: {{start: {START}, end: {end}, timezone: UTC}}
sources:
  readings:
    description: Small daily readings.
    owner: team:readings
    file: readings.csv
    primary_key: [id]
    partition: {{partitions: daily, date_column: day}}
    columns: {{id: int, day: date, value: float}}
"""
    )
    counted = collections.Counter(row.split(",")[1] for row in rows[1:])
    return {str(START + dt.timedelta(days=i)): counted.get(str(START + dt.timedelta(days=i)), 0) for i in range(DAYS)}


@pytest.fixture(scope="module")
def range_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, dict[str, int]]:
    root = tmp_path_factory.mktemp("range_root")
    expected = _write_line(root)
    home = tmp_path_factory.mktemp("range_home")
    defs, instance, report = build_all(home, spec_dir=root / "lines" / "readings")
    assert report.success, report.failures
    return Build(home=home, instance=instance, defs=defs, reports=[report]), expected


def _records(build: Build, kind: dg.DagsterEventType) -> list[dg.EventLogRecord]:
    return list(build.instance.get_records_for_run(build.reports[0].run_id, of_type=kind).records)


def test_each_partition_carries_its_own_rows(range_run) -> None:
    build, expected = range_run
    materializations = _records(build, dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert len(materializations) == DAYS
    last = max(expected)
    for record in materializations:
        materialization = record.asset_materialization
        assert materialization is not None and materialization.partition is not None
        metadata = {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}
        assert metadata["dagster/row_count"] == expected[materialization.partition]
        assert "factory/partition_rows" not in metadata  # a window-wide table would be stored once per day
        if materialization.partition == last:  # the window's metadata, once
            assert metadata["factory/window_rows"] == sum(expected.values())
            assert "dagster/column_schema" in metadata
        else:
            assert set(metadata) == {"dagster/row_count"}, materialization.partition


def test_the_latest_materialization_holds_the_windows_metadata(range_run) -> None:
    build, expected = range_run
    event = build.instance.get_latest_materialization_event(dg.AssetKey(["raw", "readings"]))
    assert event is not None and event.asset_materialization is not None
    assert event.asset_materialization.partition == max(expected)
    assert event.asset_materialization.metadata["factory/window_rows"].value == sum(expected.values())


def test_batched_event_log_indexes_partitions_as_dagsters_own(range_run, tmp_path: Path) -> None:
    """The embedded instance's event log writes a window's materializations in bulk; Dagster's own
    SQLite event log, given the same events one at a time, answers every partition query alike."""
    from dagster._core.storage.event_log import SqliteEventLogStorage

    from factory_dagster.compat import BatchingSqliteEventLogStorage

    build, expected = range_run
    assert type(build.instance.event_log_storage).__name__ == "BatchingSqliteEventLogStorage"
    entries = [r.event_log_entry for r in _records(build, dg.DagsterEventType.ASSET_MATERIALIZATION)]
    dagsters, batched = (
        SqliteEventLogStorage(str(tmp_path / "one")),
        BatchingSqliteEventLogStorage(str(tmp_path / "batch")),
    )
    for entry in entries:
        dagsters.store_event(entry)
    batched.store_event_batch(entries)
    key = dg.AssetKey(["raw", "readings"])
    for storage in (dagsters, batched):
        assert storage.get_materialized_partitions(key) == set(expected)
    assert (
        dagsters.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION).keys()
        == batched.get_latest_storage_id_by_partition(key, dg.DagsterEventType.ASSET_MATERIALIZATION).keys()
    )
    for storage in (dagsters, batched):
        [record] = storage.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, asset_partitions=[str(START)]), 1
        ).records
        assert record.asset_materialization is not None and record.partition_key == str(START)
        assert record.asset_materialization.metadata["dagster/row_count"].value == expected[str(START)]
    latest = [s.get_asset_records([key])[0].asset_entry.last_materialization for s in (dagsters, batched)]
    assert [m.dagster_event.partition for m in latest if m and m.dagster_event] == [max(expected)] * 2


def test_a_range_run_plans_each_asset_once(range_run) -> None:
    build, _ = range_run
    planned = _records(build, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert len(planned) == 1
    data = planned[0].event_log_entry.dagster_event.event_specific_data
    assert data.partitions_subset is not None and len(data.partitions_subset.get_partition_keys()) == DAYS


def test_the_report_sums_the_partitions_rows(range_run) -> None:
    build, expected = range_run
    outcome = build.reports[0].assets["raw/readings"]
    assert outcome.partition_rows() == expected
    assert outcome.rows == sum(expected.values())
    assert sorted(outcome.partitions) == sorted(expected)


def test_readers_page_through_the_events(range_run, monkeypatch: pytest.MonkeyPatch) -> None:
    build, expected = range_run
    report = build.reports[0]
    kinds = set(dg.DagsterEventType)
    everything = build.instance.get_records_for_run(report.run_id, of_type=kinds).records
    monkeypatch.setattr(events, "PAGE", 7)
    paged = list(events.run_records(build.instance, report.run_id, kinds))
    assert len(everything) > 3 * 7
    assert [r.storage_id for r in paged] == [r.storage_id for r in everything]
    again = build_report(build.instance, report.run_id, report.selected, report.seconds, report.step_assets)
    assert again.assets["raw/readings"].partition_rows() == expected
    assert again.success and again.checks == report.checks
