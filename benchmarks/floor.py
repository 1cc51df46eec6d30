"""The floor: the flights line's work as one bare script, no orchestrator.

What the factory's `build` of the flights line does, done the shortest way: land every source file
into DuckDB (typed as the line declares), run the line's dbt SQL there (the compiled models from
the root's dbt manifest, in dependency order), compute the same polars features from fct_flights,
fit the same HistGradientBoosting on the same 240-day window and evaluate it on the next 61 days,
then score every flight and write the scores as parquet. No gates, events, metadata, baselines or
lineage: what is left between this and `factory build` is the factory's own cost.

Features and scores go month by month (with the rolling window's look-back), so memory holds one
month of them; training holds its window (or `--max-train-rows` of it, sampled evenly over time).

    python -m benchmarks.floor [--root DIR] [--work DIR] [--max-train-rows N]

The root must be prepared (`factory prepare --root DIR`: the manifest holds the compiled SQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import yaml

from benchmarks.flights_data import LINE, REPO

SQL_TYPES = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR", "bool": "BOOLEAN", "date": "DATE"}
SQL_TYPES["timestamp"] = "TIMESTAMPTZ"
LOOKBACK_DAYS = 7  # the longest feature window (origin_delay_rate_7d)
TRAIN_DAYS, TEST_DAYS = 240, 61
CATEGORICAL = ["carrier", "origin", "dest"]
KEY = ["flight_id", "scheduled_departure"]
LABEL = "dep_delay"
ZONE = "America/New_York"


@dataclass
class FloorResult:
    """Wall time of each step (seconds), row counts and the test metrics."""

    steps: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    train_rows: int = 0
    test_rows: int = 0

    @property
    def total(self) -> float:
        return sum(self.steps.values())

    def to_json(self) -> str:
        return json.dumps({**self.__dict__, "total": self.total})


@contextmanager
def step(result: FloorResult, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    result.steps[name] = time.perf_counter() - started


def resolve(uri: str, base: Path) -> Path:
    """`package://pkg/path` → the file inside the installed package (found without importing it)."""
    if uri.startswith("package://"):
        import importlib.util

        package, _, inner = uri.removeprefix("package://").partition("/")
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"package {package} is not installed"
        return Path(next(iter(spec.submodule_search_locations))) / inner
    path = Path(uri).expanduser()
    return path if path.is_absolute() else base / path


def land(con: duckdb.DuckDBPyConnection, root: Path, line: str, scratch: Path) -> dict[str, int]:
    """Every source of the line into raw.<name>, each column cast to its declared type."""
    spec_dir = root / "lines" / line
    sources = yaml.safe_load((spec_dir / "sources.yaml").read_text(encoding="utf-8"))["sources"]
    con.sql("create schema if not exists raw")
    rows = {}
    for name, source in sources.items():
        path = resolve(source["file"], spec_dir)
        types = {c: t if isinstance(t, str) else t["type"] for c, t in source["columns"].items()}
        if source.get("format") == "parquet":
            relation = f"read_parquet('{path}')"
            casts = ", ".join(f'"{c}"::{SQL_TYPES[t]} as "{c}"' for c, t in types.items())
        else:
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    member = archive.namelist()[0]
                    archive.extract(member, scratch)
                path = scratch / member
            nulls = ", ".join("'" + v.replace("'", "''") + "'" for v in source.get("null_values", [])) or "''"
            relation = f"read_csv('{path}', all_varchar=true, header=true, nullstr=[{nulls}])"
            casts = ", ".join(f'try_cast(trim("{c}") as {SQL_TYPES[t]}) as "{c}"' for c, t in types.items())
        con.sql(f'create or replace table raw."{name}" as select {casts} from {relation}')
        rows[f"raw.{name}"] = con.sql(f'select count(*) from raw."{name}"').fetchall()[0][0]
    return rows


def run_models(con: duckdb.DuckDBPyConnection, root: Path, line: str) -> None:
    """The line's dbt models, compiled SQL from the manifest, views or tables in dependency order."""
    manifest = json.loads((root / "dbt_project" / "target" / "manifest.json").read_text(encoding="utf-8"))
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["fqn"][1:2] == [line]
    }
    done: set[str] = set()

    def run(uid: str) -> None:
        if uid in done:
            return
        node = nodes[uid]
        for upstream in node["depends_on"]["nodes"]:
            if upstream in nodes:
                run(upstream)
        kind = "view" if node["config"]["materialized"] == "view" else "table"
        con.sql(f'create schema if not exists "{node["schema"]}"')
        relation = f'"{node["schema"]}"."{node["alias"] or node["name"]}"'
        con.sql(f"create or replace {kind} {relation} as {node['compiled_code']}")
        done.add(uid)

    for uid in sorted(nodes):
        run(uid)


# The kept features in the order features.yaml declares them (the factory's output order).
FEATURE_ORDER = [
    "sched_hour",
    "weekday",
    "month",
    "carrier",
    "origin",
    "dest",
    "distance",
    "distance_band",
    "precip_in",
    "visibility_mi",
    "wind_speed_mph",
    "temp_f",
    "plane_age",
    "dest_altitude_ft",
    "origin_delay_rate_7d",
]
NUMERIC = [f for f in FEATURE_ORDER if f not in CATEGORICAL]
SOURCE_COLUMNS = [*KEY, LABEL, "carrier", "origin", "dest", "distance", "precip_in", "visibility_mi"]
SOURCE_COLUMNS += ["wind_speed_mph", "temp_f", "year", "plane_year_built"]


def features(source: pl.LazyFrame, airports: pl.DataFrame) -> pl.LazyFrame:
    """flight_features of lines/flights/features.yaml, as polars."""
    frame = source.with_columns(pl.col("scheduled_departure").dt.date().alias("__day"))
    delayed = (pl.col(LABEL) > 15).cast(pl.Float64)
    daily = (
        frame.group_by(["origin", "__day"])
        .agg(delayed.sum().alias("s"), delayed.count().alias("c"))
        .sort("__day")
        .rolling(index_column="__day", period=f"{LOOKBACK_DAYS}d", closed="left", group_by="origin")
        .agg(pl.col("s").sum(), pl.col("c").sum())
        .select(
            "origin", "__day", pl.when(pl.col("c") > 0).then(pl.col("s") / pl.col("c")).alias("origin_delay_rate_7d")
        )
    )
    altitude = airports.lazy().select(
        pl.col("airport_code").alias("dest"), pl.col("altitude_ft").alias("dest_altitude_ft")
    )
    distance = pl.col("distance").cast(pl.Float64)
    return (
        frame.with_columns(
            pl.col("scheduled_departure").dt.hour().cast(pl.Int32).alias("sched_hour"),
            pl.col("scheduled_departure").dt.weekday().cast(pl.Int32).alias("weekday"),
            pl.col("scheduled_departure").dt.month().cast(pl.Int32).alias("month"),
            distance.alias("distance"),
            distance.cut([500, 1000, 2000], labels=["0", "1", "2", "3"])
            .cast(pl.String)
            .cast(pl.Int32)
            .alias("distance_band"),
            (pl.col("year") - pl.col("plane_year_built")).alias("plane_age"),
        )
        .join(altitude, on="dest", how="left")
        .join(daily, on=["origin", "__day"], how="left", nulls_equal=True)
        .select([*KEY, LABEL, *FEATURE_ORDER])
        .sort(["scheduled_departure", "flight_id"])
    )


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None) -> pl.DataFrame:
    """A query's result as polars, through Arrow."""
    return pl.DataFrame(con.sql(sql, params=params).to_arrow_table())


def months(con: duckdb.DuckDBPyConnection) -> list[tuple[dt.date, dt.date]]:
    first, last = con.sql("select min(flight_date), max(flight_date) from main.fct_flights").fetchall()[0]
    out, start = [], first.replace(day=1)
    while start <= last:
        following = (start + dt.timedelta(days=32)).replace(day=1)
        out.append((start, following - dt.timedelta(days=1)))
        start = following
    return out


def write_features(con: duckdb.DuckDBPyConnection, out: Path) -> int:
    """Features month by month (reading the look-back days before each month) into out/<month>.parquet."""
    out.mkdir(parents=True, exist_ok=True)
    airports = frame(con, "select airport_code, altitude_ft from main.dim_airports")
    columns = ", ".join(f'"{c}"' for c in SOURCE_COLUMNS)
    rows = 0
    for first, last in months(con):
        source = frame(
            con,
            f"select {columns} from main.fct_flights where flight_date between ? and ?",
            [first - dt.timedelta(days=LOOKBACK_DAYS + 1), last],
        )
        month = features(source.lazy(), airports).filter(pl.col("scheduled_departure").dt.date() >= first).collect()
        month.write_parquet(out / f"{first:%Y-%m}.parquet")
        rows += month.height
    return rows


def pipeline(seed: int = 42) -> Any:
    """The delay_classifier of lines/flights/models.yaml as the factory builds it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=np.nan, encoded_missing_value=np.nan, max_categories=250
    )
    params: dict[str, Any] = {  # lines/flights/models.yaml's estimator, seeded as the factory seeds it
        "learning_rate": 0.1,
        "max_iter": 200,
        "max_leaf_nodes": 31,
        "early_stopping": False,
        "random_state": seed,
        "categorical_features": [True] * len(CATEGORICAL) + [False] * len(NUMERIC),
    }
    estimator = HistGradientBoostingClassifier(**params)
    prepare = ColumnTransformer(
        [("categorical", encoder, CATEGORICAL), ("numeric", "passthrough", NUMERIC)], verbose_feature_names_out=False
    )
    return Pipeline([("prepare", prepare), ("estimator", estimator)])


def sample_evenly(frame: pl.DataFrame, rows: int | None, seed: int = 42) -> pl.DataFrame:
    """At most `rows` rows, the same share of every day (seeded), in the frame's order."""
    if rows is None or frame.height <= rows:
        return frame
    share = rows / frame.height
    rng = np.random.default_rng(seed)
    keep = rng.random(frame.height) < share
    return frame.filter(pl.Series(keep))


def train(features_dir: Path, max_rows: int | None, result: FloorResult) -> Any:
    """Fit on the 240 days before the last 61, evaluate on those 61: the factory's split."""
    from sklearn import metrics as m

    labelled = pl.scan_parquet(features_dir / "*.parquet").filter(pl.col(LABEL).is_not_null())
    day = pl.col("scheduled_departure").dt.date()
    latest = labelled.select(day.max()).collect().item()
    test_start = latest - dt.timedelta(days=TEST_DAYS - 1)
    train_start = test_start - dt.timedelta(days=TRAIN_DAYS)
    target = (pl.col(LABEL) > 15).cast(pl.Int8)
    columns = [*CATEGORICAL, *NUMERIC]
    train_frame = labelled.filter(day.is_between(train_start, test_start - dt.timedelta(days=1))).collect()
    train_frame = sample_evenly(train_frame, max_rows)
    model = pipeline().fit(train_frame.select(columns), train_frame.select(target).to_series().to_numpy())
    result.train_rows = train_frame.height
    del train_frame
    test = labelled.filter(day.is_between(test_start, latest)).collect()
    y = test.select(target).to_series().to_numpy()
    scores = model.predict_proba(test.select(columns))[:, 1]
    predicted = (scores >= 0.5).astype(int)
    result.test_rows = test.height
    result.metrics = {
        "roc_auc": float(m.roc_auc_score(y, scores)),
        "log_loss": float(m.log_loss(y, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "precision": float(m.precision_score(y, predicted, zero_division=0.0)),  # pyright: ignore[reportArgumentType]
        "recall": float(m.recall_score(y, predicted, zero_division=0.0)),  # pyright: ignore[reportArgumentType]
        "brier": float(m.brier_score_loss(y, scores)),
    }
    return model


def score(model: Any, features_dir: Path, out: Path) -> int:
    """Every flight scored, month by month, as out/<month>.parquet; the rows scored."""
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    for path in sorted(features_dir.glob("*.parquet")):
        month = pl.read_parquet(path)
        scores = model.predict_proba(month.select([*CATEGORICAL, *NUMERIC]))[:, 1]
        month.select(KEY).with_columns(pl.Series("score", scores), pl.Series("predicted", scores >= 0.5)).write_parquet(
            out / path.name
        )
        rows += month.height
    return rows


def run_floor(
    root: Path = REPO, work: Path | None = None, max_train_rows: int | None = None, line: str = LINE
) -> FloorResult:
    """The whole floor into `work` (a temporary folder when None); step times, rows and metrics."""
    result = FloorResult()
    owned = work is None
    folder = Path(tempfile.mkdtemp(prefix="floor-")) if work is None else work
    folder.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(folder / "warehouse.duckdb"))  # dbt's SQL names the database "warehouse"
        con.sql("set TimeZone = 'UTC'")
        with step(result, "land"):
            result.rows.update(land(con, root, line, folder))
        with step(result, "sql"):
            run_models(con, root, line)
        result.rows["fct_flights"] = con.sql("select count(*) from main.fct_flights").fetchall()[0][0]
        with step(result, "features"):
            result.rows["flight_features"] = write_features(con, folder / "features")
        con.close()
        with step(result, "model"):
            model = train(folder / "features", max_train_rows, result)
        with step(result, "score"):
            result.rows["delay_predictions"] = score(model, folder / "features", folder / "predictions")
        return result
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None, report: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description="The flights line's work as one bare script (the floor).")
    parser.add_argument("--root", type=Path, default=REPO, help="factory root holding the flights line (prepared)")
    parser.add_argument("--work", type=Path, help="folder for the warehouse and parquet (default: a temporary one)")
    parser.add_argument("--max-train-rows", type=int)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args(argv)
    result = run_floor(args.root, args.work, args.max_train_rows)
    if args.json:
        report(result.to_json())
        return
    report(", ".join(f"{k} {v:.1f} s" for k, v in result.steps.items()) + f"; total {result.total:.1f} s")
    report(", ".join(f"{k} {v:,}" for k, v in result.rows.items()))
    report(", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items()) + f" (train {result.train_rows:,} rows)")


if __name__ == "__main__":
    main()
