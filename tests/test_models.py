"""Serving models: a model that fails promotion is not served; rollback serves an earlier one."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from factory_dagster.cli import main
from factory_dagster.products.model import model_registry
from factory_dagster.storage.home import FactoryHome
from tests.conftest import Build, copy_line, line_args
from tests.test_bad_inputs import DAY

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(flights_build: Build, tmp_path: Path) -> Path:
    """A copy of the built home, with its Dagster instance (scoring checks the model's history)."""
    home = tmp_path / "home"
    shutil.copytree(flights_build.home, home)
    return home


def edit_models(spec_dir: Path, old: str, new: str) -> None:
    models = spec_dir / "models.yaml"
    text = models.read_text()
    assert old in text
    models.write_text(text.replace(old, new))


def build(
    args: list[str], home: Path, capsys: pytest.CaptureFixture[str], specs: Path | None = None
) -> tuple[int, str]:
    """A `factory` command on a line folder (default: the repository's flights line)."""
    code = main([*args, "--no-prepare", "--home", str(home), *(line_args(specs) if specs else line_args())])
    return code, capsys.readouterr().out


def test_a_model_below_its_thresholds_is_not_served(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = model_registry(FactoryHome(home), "delay_classifier")
    served = registry.current()
    specs = copy_line(tmp_path / "factory")
    edit_models(specs, "seed: 42", "seed: 7")  # another model, so that a new version is trained
    edit_models(specs, "min: {roc_auc: 0.65}", "min: {roc_auc: 0.99}")
    code, out = build(["build", "--select", "delay_classifier"], home, capsys, specs)
    assert code == 1
    (line,) = [x for x in out.splitlines() if x.startswith("✗ delay_classifier: check promotion failed (ERROR)")]
    assert re.search(r"roc_auc 0\.\d{4} < required 0\.99", line)
    assert "Model delay_classifier not promoted" in out
    assert registry.current() == served
    assert len(registry.versions()) == 2  # the candidate is kept, not served
    (candidate,) = [v for v in registry.versions() if v.version != served.version]
    with pytest.raises(SystemExit):  # a rollback never serves a version that failed its promotion
        main(["rollback", "delay_classifier", "--to", candidate.version, "--home", str(home), *line_args()])
    assert (
        f"delay_classifier version {candidate.version} was never served (it did not pass its promotion "
        f"check); served versions: {served.version}"
    ) in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["rollback", "delay_classifier", "--home", str(home), *line_args()])
    assert f"has no served version older than the current {served.version}" in capsys.readouterr().err
    assert registry.current() == served


def test_every_slice_must_reach_its_threshold(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = copy_line(tmp_path / "factory")
    edit_models(specs, "slice_min: {roc_auc: 0.6}", "slice_min: {roc_auc: 0.7}")
    code, out = build(["build", "--select", "delay_classifier"], home, capsys, specs)
    assert code == 1
    (line,) = [x for x in out.splitlines() if x.startswith("✗ delay_classifier: check promotion failed")]
    failing = re.findall(r"roc_auc (0\.\d{4}) < required 0\.7 on (origin|carrier)=(\w+)", line)
    assert failing and all(float(value) < 0.7 for value, _, _ in failing)


def test_rollback_serves_the_previous_version_and_scoring_uses_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = model_registry(FactoryHome(home), "delay_classifier")
    first = registry.current()
    specs = copy_line(tmp_path / "factory")
    edit_models(specs, "seed: 42", "seed: 7")
    code, out = build(["build", "--select", "delay_classifier"], home, capsys, specs)
    assert code == 0, out
    second = registry.current()
    assert second.version != first.version
    assert main(["rollback", "delay_classifier", "--home", str(home), *line_args()]) == 0
    assert f"now serving {first.version} (was {second.version})" in capsys.readouterr().out
    assert registry.current().version == first.version
    code, out = build(["backfill", "--start", DAY.isoformat(), "--end", DAY.isoformat()], home, capsys)
    assert code == 0, out
    scored = pl.read_parquet(home / "predictions" / "delay_predictions" / f"{DAY.isoformat()}.parquet")
    # delay_classifier's rows (it competes in the slot delay_risk with delay_logit, which scores too)
    mine = scored.filter(pl.col("model_name") == "delay_classifier")
    assert mine.get_column("model_version").unique().to_list() == [first.version]
    with pytest.raises(SystemExit):
        main(["rollback", "delay_classifier", "--to", "nope", "--home", str(home), *line_args()])
    assert "has no version nope" in capsys.readouterr().err


def test_features_written_under_an_older_spec_are_named_not_trained_on(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    features = home / "features" / "flight_features"
    stale = features / f"{DAY.isoformat()}.parquet"
    pl.read_parquet(stale).drop("temp_f").write_parquet(stale)
    registry = model_registry(FactoryHome(home), "delay_classifier")
    served = registry.current()
    code, out = build(["build", "--select", "delay_classifier"], home, capsys)
    assert code == 1
    assert (
        "model delay_classifier: feature set flight_features: 1 stored partition(s) were written under an "
        f"older spec (e.g. {DAY.isoformat()} lacks temp_f): rebuild them"
    ) in out
    assert "Traceback" not in out and registry.current() == served


def test_files_of_a_former_layout_are_not_read(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from factory_dagster.storage.duckdb_warehouse import connect

    # Leftovers of the line's unpartitioned past: neither training nor the SQL view may read them.
    pl.DataFrame({"something": [1, 2, 3]}).write_parquet(home / "features" / "flight_features" / "all.parquet")
    predictions = home / "predictions" / "delay_predictions"
    pl.DataFrame({"something": [1, 2, 3]}).write_parquet(predictions / "all.parquet")
    code, out = build(["backfill", "--start", DAY.isoformat(), "--end", DAY.isoformat()], home, capsys)
    assert code == 0, out
    day_files = sorted(p for p in predictions.glob("2013-*.parquet"))
    expected = sum(pl.read_parquet(p).height for p in day_files)
    with connect(FactoryHome(home).warehouse) as con:
        columns = [c[0] for c in con.execute("describe predictions.delay_predictions").fetchall()]
        (count,) = con.execute("select count(*) from predictions.delay_predictions").fetchone()
    assert "something" not in columns and count == expected
    code, out = build(["build", "--select", "delay_classifier"], home, capsys)
    assert code == 0, out
