"""`factory models history`: who served when, from the registry's serving record (promotions and
rollbacks), and which version(s) served on a given day."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from factory_dagster.cli import main
from factory_dagster.storage.artifacts import ModelRegistry
from tests.conftest import line_args
from tests.test_monitor import write_line


def fitted(c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def registry_with_dates(directory: Path) -> tuple[str, str]:
    """v1 served from Jan 1, v2 from Jan 10 12:00, v1 again (a rollback) from Jan 20."""
    registry = ModelRegistry(directory)
    one, two = registry.save(fitted(1.0), {"metrics": {"roc_auc": 0.7}}), registry.save(fitted(0.01), {})
    for version in (one.version, two.version, one.version):
        registry.promote(version)
    index = json.loads(registry.index_path.read_text())
    index["versions"][one.version]["served_at"] = ["2024-01-01T00:00:00+00:00", "2024-01-20T00:00:00+00:00"]
    index["versions"][two.version]["served_at"] = ["2024-01-10T12:00:00+00:00"]
    registry.index_path.write_text(json.dumps(index))
    return one.version, two.version


def test_serving_history_and_the_versions_of_a_day(tmp_path: Path) -> None:
    one, two = registry_with_dates(tmp_path)
    registry = ModelRegistry(tmp_path)
    history = [
        (start.isoformat(), until.isoformat() if until else None, v.version)
        for start, until, v in registry.serving_history()
    ]
    assert history == [
        ("2024-01-01T00:00:00+00:00", "2024-01-10T12:00:00+00:00", one),
        ("2024-01-10T12:00:00+00:00", "2024-01-20T00:00:00+00:00", two),
        ("2024-01-20T00:00:00+00:00", None, one),
    ]
    day = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)  # noqa: E731
    assert [v.version for v in registry.served_during(day(5), day(6))] == [one]
    assert [v.version for v in registry.served_during(day(10), day(11))] == [one, two]  # the switch day
    assert [v.version for v in registry.served_during(day(25), day(26))] == [one]
    assert registry.served_during(day(1) - dt.timedelta(days=3), day(1)) == []


def test_the_cli_answers_who_served_on_a_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = write_line(tmp_path / "root")
    home = tmp_path / "home"
    one, two = registry_with_dates(home / "models" / "label_model")
    args = ["--home", str(home), *line_args(specs)]
    assert main(["models", "history", "label_model", "--on", "2024-01-15", *args]) == 0
    assert capsys.readouterr().out.strip() == f"label_model on 2024-01-15: {two}"
    assert main(["models", "history", "label_model", *args]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [re.findall(r"\b[0-9a-f]{12}\b", line) for line in lines] == [[one], [two], [one]]
    assert lines[0].startswith("2024-01-01 00:00:00 .. 2024-01-10 12:00:00") and "roc_auc 0.7000" in lines[0]
    assert lines[-1].startswith("2024-01-20 00:00:00 .. now")
    with pytest.raises(SystemExit):
        main(["models", "history", "label_model", "--on", "2023-12-31", *args])
    assert "label_model: no version served on 2023-12-31 (first served 2024-01-01 00:00 UTC)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["models", "history", "nope", *args])
    assert "unknown model 'nope' (known: label_model)" in capsys.readouterr().err


def test_two_versions_served_from_the_same_instant_do_not_break_the_history(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    one, two = registry.save(fitted(1.0), {}), registry.save(fitted(0.01), {})
    for version in (one.version, two.version):
        registry.promote(version)
    index = json.loads(registry.index_path.read_text())
    for version in (one.version, two.version):
        index["versions"][version]["served_at"] = ["2024-01-01T00:00:00+00:00"]
    registry.index_path.write_text(json.dumps(index))
    starts = [(start.isoformat(), v.version) for start, _, v in ModelRegistry(tmp_path).serving_history()]
    assert sorted(starts) == sorted(
        [("2024-01-01T00:00:00+00:00", one.version), ("2024-01-01T00:00:00+00:00", two.version)]
    )
