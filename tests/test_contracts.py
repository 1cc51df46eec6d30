"""Source column contracts (renamed, optional, ignored columns; header matching) and composite
keys (`entity: [ticker, date]`), on a synthetic stock line: a CSV as upstream sends it
(`Ticker,Date,Open,High,Low,Close,Volume,Adj Close`), a source that renames its headers, a feature
set keyed by (ticker, date), a Ridge regression of the adjusted close and its latest scores."""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from rich.console import Console

from factory_dagster.automation import landing
from factory_dagster.cli.summary import print_problems
from factory_dagster.execution.report import AssetOutcome, RunReport
from factory_dagster.products import load_line
from factory_dagster.products.source import IGNORED_COLUMNS, SourceSpec
from factory_dagster.products.source_files import IngestionError, SourceFrame, read_source_file
from factory_dagster.spec.errors import display_path
from tests.synthetic import OWNER, suite
from tests.test_spec_errors import line_of, load_error, rel, replace

HEADER = ["Ticker", "Date", "Open", "High", "Low", "Close", "Volume", "Adj Close"]
TICKERS = {"ACME": 120.0, "GLOBX": 48.0, "INITECH": 310.0}  # ticker → first close
FIRST_DAY = dt.date(2024, 1, 1)
CALENDAR_DAYS = 150


def write_prices(path: Path, header: list[str] = HEADER, seed: int = 11) -> Path:
    """Weekday prices per ticker: a random walk with an open near the last close, a high and low
    around them, and an adjusted close a dividend factor below the close."""
    rng = np.random.default_rng(seed)
    rows = []
    for ticker, start in TICKERS.items():
        close = start
        for offset in range(CALENDAR_DAYS):
            day = FIRST_DAY + dt.timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            open_ = close * (1 + rng.normal(0, 0.004))
            close = open_ * (1 + rng.normal(0, 0.012))
            high = max(open_, close) * (1 + abs(rng.normal(0, 0.004)))
            low = min(open_, close) * (1 - abs(rng.normal(0, 0.004)))
            volume = int(rng.integers(200_000, 2_000_000))
            row = {
                "Ticker": ticker,
                "Date": day.isoformat(),
                "Open": f"{open_:.4f}",
                "High": f"{high:.4f}",
                "Low": f"{low:.4f}",
                "Close": f"{close:.4f}",
                "Volume": str(volume),
                "Adj Close": f"{close * 0.985:.4f}",
            }
            rows.append([row.get(column, "") for column in header])
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


SOURCES = """\
sources:
  stock_prices:
    description: Daily prices per ticker, as the market data vendor sends them.
    owner: {owner}
    file: {file}
    primary_key: [ticker, date]
    columns:
      ticker: {{type: string, from: Ticker}}
      date: {{type: date, from: Date}}
      open: {{type: float, from: Open}}
      high: {{type: float, from: High}}
      low: {{type: float, from: Low}}
      close: {{type: float, from: Close}}
      volume: {{type: int, from: Volume}}
      adj_close: {{type: float, from: "Adj Close"}}
"""


def line_documents() -> dict[str, dict]:
    """The line's spec sections other than sources, by file name."""
    return {
        "line": {
            "line": {
                "description": "Synthetic stock prices and a forecast of each day's adjusted close.",
                "automation": {"enabled": False},
                "openlineage": {"enabled": False},
            }
        },
        "feature_sets": {
            "feature_sets": {
                "stock_features": {
                    "description": "What is known about a ticker on a day.",
                    "owner": OWNER,
                    "source": "stock_prices",
                    "entity": ["ticker", "date"],
                    "timestamp": "date",
                    "labels": ["adj_close"],
                    "features": {
                        "open": "open",
                        "previous_close": {"lag": {"value": "close", "by": "ticker", "days": 1, "agg": "mean"}},
                        "close_5d": {"rolling": {"value": "close", "by": "ticker", "window_days": 7, "agg": "mean"}},
                    },
                }
            }
        },
        "models": {
            "models": {
                "adj_close_model": {
                    "description": "The adjusted close from the open and the recent closes.",
                    "owner": OWNER,
                    "features": {"stock_features": "all"},
                    "target": {"column": "adj_close"},
                    "estimator": {"name": "Ridge"},
                    "split": {"train_days": 100, "test_days": 30},
                    "seed": 3,
                }
            }
        },
        "predictions": {
            "predictions": {
                "adj_close_forecasts": {
                    "description": "The model's adjusted close of each ticker over the latest days.",
                    "owner": OWNER,
                    "model": "adj_close_model",
                    "score": {"last_days": 10},
                }
            }
        },
    }


def whole_key_suite(name: str) -> dict:
    """Unique (ticker, date) pairs with neither part null: the whole key tested."""
    return suite(
        name,
        [
            ("expect_column_values_to_not_be_null", {"column": "ticker"}, "critical"),
            ("expect_column_values_to_not_be_null", {"column": "date"}, "critical"),
            ("expect_compound_columns_to_be_unique", {"column_list": ["ticker", "date"]}, "critical"),
        ],
    )


def make_stock_line(root: Path, line: str = "stocks", key_suites: bool = True) -> Path:
    """The stock line in the factory root `root`; returns the line folder. With `key_suites`, the
    raw table, the feature set and the forecasts each have a suite testing the whole key."""
    specs, suites = root / "lines" / line, root / "expectations" / line
    specs.mkdir(parents=True)
    suites.mkdir(parents=True)
    (root / "factory.yaml").write_text(yaml.safe_dump({"lines": [line]}))
    data = write_prices(root / "prices.csv")
    (specs / "sources.yaml").write_text(SOURCES.format(owner=OWNER, file=json.dumps(str(data))))
    for name, document in line_documents().items():
        (specs / f"{name}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    if key_suites:
        for asset in ("raw.stock_prices", "stock_features", "adj_close_forecasts"):
            (suites / f"{asset}.json").write_text(json.dumps(whole_key_suite(asset)))
    return specs


# --- reading files under a contract ------------------------------------------------------------


def source_spec(columns: dict, **options: object) -> SourceSpec:
    return SourceSpec.model_validate(
        {"description": "d", "owner": OWNER, "file": "prices.csv", "columns": columns, **options}
    )


STOCK_COLUMNS = yaml.safe_load(SOURCES.format(owner=OWNER, file="x"))["sources"]["stock_prices"]["columns"]


def csv_column(path: Path, header: str) -> list[str]:
    with path.open(newline="") as handle:
        return [row[header] for row in csv.DictReader(handle)]


def read(path: Path, source: SourceSpec, file_format: str = "csv") -> SourceFrame:
    return read_source_file(path, source.contract(), file_format, source.null_values)


def test_upstream_headers_are_renamed_to_declared_columns(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.csv")
    frame = read(path, source_spec(STOCK_COLUMNS)).frame
    assert frame.columns == ["ticker", "date", "open", "high", "low", "close", "volume", "adj_close"]
    assert frame.schema["adj_close"] == pl.Float64 and frame.schema["date"] == pl.Date
    assert frame.get_column("adj_close").to_list() == [float(v) for v in csv_column(path, "Adj Close")]
    assert frame.get_column("ticker").to_list() == csv_column(path, "Ticker")


@pytest.mark.parametrize("file_format", ["zip", "parquet"])
def test_zipped_csv_and_parquet_files_are_read_under_the_same_contract(tmp_path: Path, file_format: str) -> None:
    path = write_prices(tmp_path / "prices.csv")
    expected = read(path, source_spec(STOCK_COLUMNS)).frame
    if file_format == "zip":
        other = tmp_path / "prices.csv.zip"
        with zipfile.ZipFile(other, "w") as archive:
            archive.write(path, "prices.csv")
        got = read(other, source_spec(STOCK_COLUMNS)).frame
    else:
        other = tmp_path / "prices.parquet"
        pl.read_csv(path, infer_schema=False).write_parquet(other)  # upstream's headers, as text
        got = read(other, source_spec(STOCK_COLUMNS), "parquet").frame
    assert got.equals(expected)


def test_an_optional_column_missing_from_a_file_lands_as_nulls_of_its_type(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.csv", header=[h for h in HEADER if h != "Adj Close"])
    columns = {**STOCK_COLUMNS, "adj_close": {"type": "float", "from": "Adj Close", "optional": True}}
    frame = read(path, source_spec(columns)).frame
    rows = len(csv_column(path, "Ticker"))
    assert frame.height == rows and frame.schema["adj_close"] == pl.Float64
    assert frame.get_column("adj_close").null_count() == rows


def test_a_required_mapped_column_missing_names_the_file_and_the_column(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.csv", header=[h for h in HEADER if h != "Adj Close"])
    with pytest.raises(IngestionError) as caught:
        read(path, source_spec(STOCK_COLUMNS))
    assert str(caught.value) == (
        f"{display_path(path)}: missing column 'Adj Close' (adj_close) "
        "(declared: Ticker, Date, Open, High, Low, Close, Volume, Adj Close)"
    )


def test_a_bad_value_names_the_header_in_the_file(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.csv")
    text = path.read_text().splitlines()
    text[2] = ",".join([*text[2].split(",")[:-1], "n/a"])
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(IngestionError) as caught:
        read(path, source_spec(STOCK_COLUMNS))
    assert str(caught.value) == f"{display_path(path)}: row 2, column 'Adj Close': 'n/a' is not a number"


def test_unknown_columns_are_refused_by_default_and_ignored_when_declared(tmp_path: Path) -> None:
    path = write_prices(tmp_path / "prices.csv", header=[*HEADER, "Notes", "Dividends"])
    with pytest.raises(IngestionError) as caught:
        read(path, source_spec(STOCK_COLUMNS))
    assert str(caught.value) == (
        f"{display_path(path)}: unexpected columns 'Notes', 'Dividends' "
        "(declared: Ticker, Date, Open, High, Low, Close, Volume, Adj Close)"
    )
    ignoring = read(path, source_spec(STOCK_COLUMNS, unknown_columns="ignore"))
    assert ignoring.ignored == ["Notes", "Dividends"]
    assert ignoring.frame.columns == list(STOCK_COLUMNS)
    listed = read(path, source_spec(STOCK_COLUMNS, ignore_columns=["Notes", "Dividends"]))
    assert listed.ignored == [] and listed.frame.equals(ignoring.frame)


def test_headers_match_exactly_unless_case_insensitive_is_declared(tmp_path: Path) -> None:
    shouting = [h.upper() for h in HEADER]
    path = write_prices(tmp_path / "prices.csv", header=HEADER)
    path.write_text(path.read_text().replace(",".join(HEADER), ",".join(shouting), 1))
    with pytest.raises(IngestionError, match=r"missing columns 'Ticker' \(ticker\), 'Date' \(date\)"):
        read(path, source_spec(STOCK_COLUMNS))
    frame = read(path, source_spec(STOCK_COLUMNS, header_match="case_insensitive")).frame
    assert frame.get_column("adj_close").to_list() == [float(v) for v in csv_column(path, "ADJ CLOSE")]


def test_two_headers_matching_one_column_case_insensitively_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("Ticker,Date,ticker\nA,2024-01-02,a\n")
    source = source_spec({"ticker": "string", "date": "date"}, header_match="case_insensitive")
    with pytest.raises(IngestionError) as caught:
        read(path, source)
    assert str(caught.value) == (
        f"{display_path(path)}: headers 'Ticker', 'ticker' all match column 'ticker' (header_match: case_insensitive)"
    )


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_landing_files_carry_upstream_headers_and_land_like_the_source(tmp_path: Path, file_format: str) -> None:
    """`factory replay` writes a day as upstream would (its headers); landing reads it back."""
    source = source_spec(STOCK_COLUMNS, partition={"partitions": "daily", "date_column": "date"}, landing="prices")
    frame = read(write_prices(tmp_path / "prices.csv"), source).frame
    day = dt.date(2024, 1, 3)
    rows = frame.filter(landing.row_dates(source, "UTC") == day)
    path = landing.write_day(tmp_path, day, landing.upstream_frame(source, rows), file_format)
    assert pl.read_csv(path).columns[-1] == "Adj Close" if file_format == "csv" else True
    assert read(path, source, file_format).frame.equals(rows)


def test_the_run_summary_warns_of_ignored_columns() -> None:
    report = RunReport("run", True, 1.0, ["raw/stock_prices"])
    report.assets["raw/stock_prices"] = AssetOutcome("raw/stock_prices", metadata={IGNORED_COLUMNS: ["Notes"]})
    console = Console(record=True, width=80)
    print_problems(console, report)
    assert console.export_text().splitlines() == [
        "! raw/stock_prices: ignored 1 column the spec does not name (unknown_columns: ignore): Notes"
    ]


# --- spec errors: one line with file, key and line -----------------------------------------------


@pytest.fixture
def stock_dir(tmp_path: Path) -> Path:
    return make_stock_line(tmp_path / "factory")


def test_the_stock_line_loads_with_both_column_forms(stock_dir: Path) -> None:
    replace(stock_dir / "sources.yaml", "volume: {type: int, from: Volume}", "Volume: int")
    spec = load_line(stock_dir)
    source = spec.sources["stock_prices"]
    assert source.headers()["Volume"] == "Volume" and source.headers()["adj_close"] == "Adj Close"
    assert source.column_types()["adj_close"] == "float"


def test_a_header_two_columns_read_is_refused(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(sources, 'adj_close: {type: float, from: "Adj Close"}', "adj_close: {type: float, from: Close}")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.columns.adj_close.from: header 'Close' is already read by column "
        f"'close': each header feeds one column (line {line_of(sources, 'adj_close:')})"
    )


def test_a_renamed_column_colliding_with_another_columns_header_is_refused(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(
        sources,
        "      open: {type: float, from: Open}\n",
        "      open: {type: float, from: Open}\n      Close: float\n",
    )
    replace(sources, "    columns:\n", "    header_match: case_insensitive\n    columns:\n")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.columns.close.from: header 'Close' is already read by column "
        f"'Close' (header_match: case_insensitive): each header feeds one column "
        f"(line {line_of(sources, 'close: {type')})"
    )


def test_an_ignored_column_that_is_also_declared_is_refused(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(sources, "    columns:\n", "    ignore_columns: [Notes, Adj Close]\n    columns:\n")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.ignore_columns[1]: header 'Adj Close' is read by column "
        f"'adj_close': a header is declared or ignored, not both (line {line_of(sources, 'ignore_columns')})"
    )


def test_a_key_column_cannot_be_optional(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(sources, "date: {type: date, from: Date}", "date: {type: date, from: Date, optional: true}")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.columns.date.optional: 'date' is in the primary key: "
        f"it cannot be optional (line {line_of(sources, 'optional: true')})"
    )


def test_an_unknown_field_of_a_column_lists_from(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(sources, "from: Volume}", "header: Volume}")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.columns.volume: unknown field 'header' "
        f"(allowed: type, from, optional) (line {line_of(sources, 'header: Volume')})"
    )


def test_an_unknown_policy_is_refused(stock_dir: Path) -> None:
    sources = stock_dir / "sources.yaml"
    replace(sources, "    columns:\n", "    unknown_columns: drop\n    columns:\n")
    assert load_error(stock_dir) == (
        f"{rel(sources)}: sources.stock_prices.unknown_columns: expected one of 'refuse' or 'ignore', "
        f"got 'drop' (line {line_of(sources, 'unknown_columns')})"
    )


def test_an_entity_column_the_source_lacks_is_named_by_its_index(stock_dir: Path) -> None:
    features = stock_dir / "feature_sets.yaml"
    replace(features, "  - date\n", "  - day\n")
    message = load_error(stock_dir)
    assert message == (
        f"{rel(features)}: feature_sets.stock_features.entity[1]: 'day' is not a column of stock_prices "
        "(columns: adj_close, close, date, high, low, open, ticker, volume) "
        f"(line {line_of(features, '- day')})"
    )


def test_a_model_cannot_join_feature_sets_keyed_by_different_widths(stock_dir: Path) -> None:
    features = stock_dir / "feature_sets.yaml"
    document = yaml.safe_load(features.read_text())
    ticker_set = {**document["feature_sets"]["stock_features"], "entity": "ticker", "features": {"high": "high"}}
    document["feature_sets"]["ticker_features"] = {**ticker_set, "labels": []}
    features.write_text(yaml.safe_dump(document, sort_keys=False))
    models = stock_dir / "models.yaml"
    replace(
        models,
        "    features:\n      stock_features: all\n",
        "    features:\n      stock_features: all\n      ticker_features: all\n",
    )
    assert load_error(stock_dir) == (
        f"{rel(models)}: models.adj_close_model.features.ticker_features: feature set 'ticker_features' is keyed "
        "by (ticker) but 'stock_features' by (ticker, date): the model joins its feature sets on the whole entity "
        f"(line {line_of(models, 'ticker_features: all')})"
    )


# --- composite keys through the graph: key columns, output schema, TD19K ------------------------


def test_the_whole_key_is_each_products_row_key_and_the_forecasts_carry_it(stock_dir: Path) -> None:
    spec = load_line(stock_dir)
    keys = {name: kind.row_key(spec, name) for kind in spec.kinds for name in kind.names(spec)}
    assert keys["stock_prices"] == keys["stock_features"] == keys["adj_close_forecasts"] == ["ticker", "date"]
    assert spec.feature_sets["stock_features"].output_columns()[:3] == ["ticker", "date", "adj_close"]
    forecasts = spec.kind_of("adj_close_forecasts")
    assert forecasts is not None
    assert list(forecasts.columns(spec, "adj_close_forecasts") or {})[:3] == ["ticker", "date", "score"]


@pytest.mark.parametrize("key_suites", [True, False], ids=["whole key tested", "untested"])
def test_td19k_asks_for_a_test_of_the_whole_key(tmp_path: Path, key_suites: bool) -> None:
    from factory_dagster.factory import build_definitions, build_gates
    from factory_dagster.lineage.assess import assess

    spec = load_line(make_stock_line(tmp_path / "factory", key_suites=key_suites))
    defs = build_definitions(specs=[spec], home=tmp_path / "home")
    result = assess(spec, defs, None, {k: g.suite for k, g in build_gates(spec).items()})
    untested = [f for f in result.debt.findings if f.rule == "TD19K"]
    if key_suites:
        assert untested == []
        return
    assert sorted(f.assets[0] for f in untested) == ["adj_close_forecasts", "raw/stock_prices", "stock_features"]
    assert all(f.evidence.startswith(f"key of {f.assets[0]} (ticker, date) has no unique") for f in untested)
    assert all("expect_compound_columns_to_be_unique on [ticker, date]" in f.fix for f in untested)


def test_a_suite_testing_one_part_of_the_key_does_not_test_the_whole_key(tmp_path: Path) -> None:
    from factory_dagster.factory import build_definitions, build_gates
    from factory_dagster.lineage.assess import assess

    specs = make_stock_line(tmp_path / "factory")
    partial = suite(
        "stock_features",
        [
            ("expect_column_values_to_not_be_null", {"column": "ticker"}, "critical"),
            ("expect_column_values_to_be_unique", {"column": "ticker"}, "critical"),
        ],
    )
    (specs.parent.parent / "expectations" / "stocks" / "stock_features.json").write_text(json.dumps(partial))
    spec = load_line(specs)
    defs = build_definitions(specs=[spec], home=tmp_path / "home")
    result = assess(spec, defs, None, {k: g.suite for k, g in build_gates(spec).items()})
    assert [f.assets[0] for f in result.debt.findings if f.rule == "TD19K"] == ["stock_features"]


# --- end to end: upstream's CSV lands renamed, a (ticker, date) feature set trains and scores ---


@pytest.mark.e2e
def test_an_upstream_csv_lands_renamed_and_a_ticker_day_model_trains_and_scores(tmp_path: Path) -> None:
    from tests.conftest import Build, build_all, query

    specs = make_stock_line(tmp_path / "factory")
    data = tmp_path / "factory" / "prices.csv"
    assert data.read_text().splitlines()[0] == "Ticker,Date,Open,High,Low,Close,Volume,Adj Close"
    defs, instance, report = build_all(tmp_path / "home", spec_dir=specs)
    assert report.success, report.failures
    build = Build(tmp_path / "home", instance, defs, [report])

    with data.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    landed = query(build, "select ticker, date, adj_close from raw.stock_prices order by ticker, date")
    assert len(landed) == len(rows) == report.assets["raw/stock_prices"].rows
    expected = sorted((r["Ticker"], dt.date.fromisoformat(r["Date"]), float(r["Adj Close"])) for r in rows)
    assert landed == expected

    assert "adj_close_model" in report.assets  # trained and promoted
    forecasts = pl.read_parquet(report.assets["adj_close_forecasts"].metadata["dagster/uri"])
    assert forecasts.columns[:3] == ["ticker", "date", "score"]
    latest = max(dt.date.fromisoformat(r["Date"]) for r in rows)
    scored = {
        (r["Ticker"], dt.date.fromisoformat(r["Date"]))
        for r in rows
        if (latest - dt.timedelta(days=9)) <= dt.date.fromisoformat(r["Date"])
    }
    pairs = list(zip(forecasts.get_column("ticker"), forecasts.get_column("date"), strict=True))
    assert len(pairs) == len(set(pairs)) == len(scored) and set(pairs) == scored
    assert forecasts.get_column("score").is_not_null().all()


@pytest.mark.e2e
def test_ignored_columns_are_recorded_on_the_materialization(tmp_path: Path) -> None:
    import dagster as dg

    from factory_dagster.execution.runner import execute
    from factory_dagster.factory import build_definitions

    specs = make_stock_line(tmp_path / "factory")
    write_prices(tmp_path / "factory" / "prices.csv", header=[*HEADER, "Notes"])
    replace(specs / "sources.yaml", "    columns:\n", "    unknown_columns: ignore\n    columns:\n")
    defs = build_definitions(specs=[load_line(specs)], home=tmp_path / "home")
    report = execute(defs, dg.DagsterInstance.ephemeral(), [dg.AssetKey(["raw", "stock_prices"])], log_dir=tmp_path)
    assert report.success, report.failures
    assert report.assets["raw/stock_prices"].metadata[IGNORED_COLUMNS] == ["Notes"]
