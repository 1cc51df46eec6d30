"""Bad input is blocked: real files with one defect each, injected into a built factory.

Each must fail the right gate (or ingestion, naming file, row and column), skip everything
downstream, leave every previous output byte-identical, quarantine what was rejected, and make
`factory build` exit non-zero with a one-line reason.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import re
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from factory_dagster.cli import main
from tests.conftest import REPO, Build, copy_line, line_args, suites_of
from tests.test_flights_line import DATA

pytestmark = pytest.mark.e2e

DOWNSTREAM = ["stg_flights", "int_flights_enriched", "fct_flights", "flight_features", "delay_predictions"]
DAY = dt.date(2013, 4, 16)


def flights_rows() -> list[list[str]]:
    with zipfile.ZipFile(DATA / "flights.csv.zip") as archive:
        text = archive.read(archive.namelist()[0]).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture(scope="module")
def rows() -> list[list[str]]:
    """The header and the rows of one day, as upstream would deliver them."""
    everything = flights_rows()
    header = everything[0]
    y, m, d = (header.index(c) for c in ("year", "month", "day"))
    return [header] + [r for r in everything[1:] if (int(r[y]), int(r[m]), int(r[d])) == (DAY.year, DAY.month, DAY.day)]


def as_csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def set_field(rows: list[list[str]], row: int, column: str, value: str) -> list[list[str]]:
    changed = [list(r) for r in rows]
    changed[row][rows[0].index(column)] = value
    return changed


def drop_column(rows: list[list[str]], column: str) -> list[list[str]]:
    index = rows[0].index(column)
    return [r[:index] + r[index + 1 :] for r in rows]


def fingerprint(home: Path) -> dict[str, object]:
    """Every table's rows (count and content hash) and every output file's bytes."""
    prints: dict[str, object] = {}
    con = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'"
        ).fetchall()
        for schema, table in tables:
            prints[f"{schema}.{table}"] = con.execute(
                f'select count(*), sum(hash(t)) from "{schema}"."{table}" t'
            ).fetchall()
    finally:
        con.close()
    for folder in ("features", "predictions", "models"):
        for path in sorted((home / folder).rglob("*")):
            if path.is_file():
                prints[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return prints


def run_backfill(
    home: Path, capsys: pytest.CaptureFixture[str], spec_dir: Path | None = None, day: dt.date = DAY
) -> tuple[int, str]:
    """`factory backfill` of one day of a line (the repository's flights line unless `spec_dir`): the
    daily chain, from its landing file when there is one."""
    args = ["backfill", "--start", day.isoformat(), "--end", day.isoformat(), "--no-prepare", "--home", str(home)]
    code = main(args + (line_args(spec_dir) if spec_dir else line_args()))
    return code, capsys.readouterr().out


@pytest.fixture
def built_home(flights_build: Build, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(flights_build.home, home, ignore=shutil.ignore_patterns("dagster"))
    return home


def land(home: Path, content: str | bytes, suffix: str = ".csv") -> Path:
    path = home / "landing" / "flights" / f"{DAY.isoformat()}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def point_source(spec_dir: Path, source: str, path: Path) -> None:
    sources = spec_dir / "sources.yaml"
    text = sources.read_text()
    pattern = rf"(\n  {source}:\n(?:    .*\n)*?    file: ).*"
    text, count = re.subn(pattern, rf"\g<1>{path}", text)
    assert count == 1
    sources.write_text(text)


FILE = f"landing/flights/{DAY.isoformat()}"
CASES: dict[str, tuple[Callable[[list[list[str]]], str | bytes], str, str]] = {
    # name: (make the day's file, file suffix, the expected one-line reason)
    "null key": (
        lambda r: as_csv(set_field(r, 7, "carrier", "")),
        ".csv",
        "raw/flights: gate failed (ERROR): expect_column_values_to_not_be_null(carrier): 1 unexpected",
    ),
    "duplicate keys": (
        lambda r: as_csv([*r, r[42]]),
        ".csv",
        "raw/flights: gate failed (ERROR): expect_compound_columns_to_be_unique(year, month, day…): 2 unexpected",
    ),
    "dropped column": (
        lambda r: as_csv(drop_column(r, "distance")),
        ".csv",
        f"{FILE}.csv: missing column 'distance' (declared: year, month, day,",
    ),
    "renamed column": (
        lambda r: as_csv([["destination" if c == "dest" else c for c in r[0]], *r[1:]]),
        ".csv",
        f"{FILE}.csv: missing column 'dest'; unexpected column 'destination'",
    ),
    "string in a numeric column": (
        lambda r: as_csv(set_field(r, 500, "dep_delay", "abc")),
        ".csv",
        f"{FILE}.csv: row 500, column 'dep_delay': 'abc' is not an integer",
    ),
    "unknown carrier": (
        lambda r: as_csv(set_field(r, 10, "carrier", "ZZ")),
        ".csv",
        "expect_column_values_to_be_in_set(carrier): 1 unexpected (",
    ),
    "negative distance": (
        lambda r: as_csv(set_field(r, 20, "distance", "-100")),
        ".csv",
        "expect_column_values_to_be_between(distance): 1 unexpected (",
    ),
    "empty file": (lambda r: "", ".csv", f"{FILE}.csv: file is empty"),
    "truncated file": (lambda r: as_csv(r)[: len(as_csv(r)) // 2], ".csv", "the file is truncated"),
    "corrupt file": (
        lambda r: b"PAR1" + b"\x00garbage" * 100,
        ".parquet",
        f"{FILE}.parquet: not a readable parquet file",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_flights_file_is_blocked(
    case: str, rows: list[list[str]], built_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make, suffix, reason = CASES[case]
    landed = land(built_home, make(rows), suffix)
    before = fingerprint(built_home)

    code, out = run_backfill(built_home, capsys)

    assert code == 1
    lines = [line for line in out.splitlines() if reason in line]
    assert len(lines) == 1, f"expected one line containing {reason!r} in:\n{out}"
    assert lines[0].startswith("✗ raw/flights: "), lines[0]
    if case in ("unknown carrier", "negative distance"):  # one row of the day's rows
        percent = f"{100 / (len(rows) - 1):.3g}%), e.g. {'ZZ' if case == 'unknown carrier' else -100}"
        assert lines[0].endswith(percent.replace("ZZ", "'ZZ'")), lines[0]
    skipped = next(line for line in out.splitlines() if line.startswith("skipped, previous versions kept"))
    for asset in DOWNSTREAM:
        assert asset in skipped
    assert "FAILED" in out
    assert fingerprint(built_home) == before, "a previous output changed"
    quarantined = list((built_home / "quarantine" / "raw.flights").glob("*/reason.json"))
    assert len(quarantined) == 1
    record = json.loads(quarantined[0].read_text())
    assert record["asset"] == "raw/flights" and record["run_id"]
    assert landed.name in record["files"]


def test_a_corrupt_source_archive_fails_ingestion(
    built_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a landing file, a day lands from the source file: a corrupt archive is refused."""
    archive = tmp_path / "flights.csv.zip"
    archive.write_bytes(b"PK\x03\x04" + b"\x00garbage" * 100)
    spec_dir = copy_line(tmp_path / "factory")
    point_source(spec_dir, "flights", archive)
    before = fingerprint(built_home)
    code, out = run_backfill(built_home, capsys, spec_dir)
    assert code == 1
    assert any(
        line.startswith("✗ raw/flights: ingestion failed: ")
        and "flights.csv.zip: corrupt or unreadable archive" in line
        for line in out.splitlines()
    ), out
    assert fingerprint(built_home) == before


def test_failed_gate_shows_a_per_expectation_table(
    flights_build: Build, rows: list[list[str]], built_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from factory_dagster.execution.instance import factory_instance
    from factory_dagster.storage.home import FactoryHome

    land(built_home, as_csv(set_field(set_field(rows, 3, "origin", "BOS"), 4, "distance", "0")))
    code, _ = run_backfill(built_home, capsys)
    assert code == 1
    instance = factory_instance(FactoryHome(built_home))
    key = dg.AssetCheckKey(dg.AssetKey(["raw", "flights"]), "quality_gate")
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([key])[key]
    evaluation = record.evaluation
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    table = evaluation.metadata["expectations"].value
    assert table.startswith(
        "| # | expectation | severity | result | observed | unexpected | unexpected % | examples | engine |"
    )
    failing = [line for line in table.splitlines() if "❌ fail" in line]
    assert len(failing) == 2
    assert any("expect_column_values_to_be_in_set(origin)" in line and "'BOS'" in line for line in failing)
    assert any("expect_column_values_to_be_between(distance)" in line and "| 1 |" in line for line in failing)
    suite = json.loads((REPO / "expectations" / "flights" / "raw.flights.json").read_text())
    assert evaluation.metadata["engine"].value == f"polars: {len(suite['expectations'])}"
    assert evaluation.metadata["row_count"].value == len(rows) - 1
    assert "quarantine" in evaluation.metadata


def tighten(suites: Path, name: str, column: str, **kwargs: object) -> None:
    path = suites / f"{name}.json"
    document = json.loads(path.read_text())
    for expectation in document["expectations"]:
        if (
            expectation["kwargs"].get("column") == column
            and expectation["type"] == "expect_column_values_to_be_between"
        ):
            expectation["kwargs"].update(kwargs)
            break
    else:
        raise AssertionError(f"no between expectation on {column} in {name}")
    path.write_text(json.dumps(document))


def test_a_failed_mart_gate_keeps_features_and_predictions(
    built_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_dir = copy_line(tmp_path / "factory")
    tighten(suites_of(spec_dir), "fct_flights", "dep_delay", max_value=60)
    before = {k: v for k, v in fingerprint(built_home).items() if not k.startswith(("main.", "raw."))}
    code, out = run_backfill(built_home, capsys, spec_dir)
    assert code == 1
    assert "✗ fct_flights: gate failed (ERROR): expect_column_values_to_be_between(dep_delay):" in out
    skipped = next(line for line in out.splitlines() if line.startswith("skipped, previous versions kept"))
    assert all(a in skipped for a in ("flight_features", "delay_predictions"))
    after = {k: v for k, v in fingerprint(built_home).items() if not k.startswith(("main.", "raw."))}
    assert after == before
    assert list((built_home / "quarantine" / "fct_flights").glob("*/rows.parquet"))


def test_a_failed_predictions_gate_keeps_serving_the_previous_predictions(
    built_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_dir = copy_line(tmp_path / "factory")
    tighten(suites_of(spec_dir), "delay_predictions", "score", max_value=0.2)
    served = built_home / "predictions" / "delay_predictions" / f"{DAY.isoformat()}.parquet"
    before = hashlib.sha256(served.read_bytes()).hexdigest()
    code, out = run_backfill(built_home, capsys, spec_dir)
    assert code == 1
    assert "✗ delay_predictions: gate failed (ERROR): expect_column_values_to_be_between(score):" in out
    assert hashlib.sha256(served.read_bytes()).hexdigest() == before
    con = duckdb.connect(str(built_home / "warehouse.duckdb"))
    try:  # SQL readers still see the previous predictions
        flights = con.execute("select count(*) from main.fct_flights").fetchone()[0]
        served = "select count(*) from predictions.delay_predictions where role = 'champion'"
        assert con.execute(served).fetchone()[0] == flights
    finally:
        con.close()
    rejected = list((built_home / "quarantine" / "delay_predictions").glob("*/rows.parquet"))
    assert len(rejected) == 1


def test_a_mapped_column_missing_from_a_landing_file_is_blocked(
    rows: list[list[str]], built_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The spec reads `dest` from upstream's `Destination`; a day's file still sends `dest`."""
    spec_dir = copy_line(tmp_path / "factory")
    sources = spec_dir / "sources.yaml"
    sources.write_text(
        sources.read_text().replace("      dest: string\n", "      dest: {type: string, from: Destination}\n", 1)
    )
    land(built_home, as_csv(rows))
    before = fingerprint(built_home)
    code, out = run_backfill(built_home, capsys, spec_dir)
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("✗ raw/flights: ingestion failed: ")]
    assert len(failed) == 1, out
    assert f"{FILE}.csv: missing column 'Destination' (dest); unexpected column 'dest' (declared: year," in failed[0]
    assert fingerprint(built_home) == before


@pytest.mark.parametrize(
    ("old", "new", "key", "reason"),
    [
        (
            "      dest: string\n",
            "      dest: {type: string, from: origin}\n",
            "sources.flights.columns.dest.from",
            "header 'origin' is already read by column 'origin': each header feeds one column",
        ),
        (
            "    landing: flights ",
            "    ignore_columns: [notes, tailnum]\n    landing: flights ",
            "sources.flights.ignore_columns[1]",
            "header 'tailnum' is read by column 'tailnum': a header is declared or ignored, not both",
        ),
    ],
    ids=["renamed column colliding with another", "ignored column that is declared"],
)
def test_a_contradictory_column_contract_stops_the_build_before_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, key: str, reason: str
) -> None:
    from factory_dagster.spec.errors import display_path

    spec_dir = copy_line(tmp_path / "factory")
    sources = spec_dir / "sources.yaml"
    text = sources.read_text()
    assert old in text
    sources.write_text(text.replace(old, new, 1))
    line = next(n for n, t in enumerate(sources.read_text().splitlines(), start=1) if new.strip().split("\n")[0] in t)
    with pytest.raises(SystemExit) as exited:
        main(["build", "--no-prepare", "--home", str(tmp_path / "home"), *line_args(spec_dir)])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {display_path(sources)}: {key}: {reason} (line {line})"
