"""The spec reader parses with libyaml and gives what the pure-Python parser gives."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from factory_dagster.spec import yaml_source
from tests.conftest import REPO

SPEC_FILES = sorted((REPO / "lines").glob("*/*.yaml"))


def test_libyaml_is_used() -> None:
    assert yaml_source.FAST_LOADER is yaml.CSafeLoader


@pytest.mark.parametrize("path", SPEC_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_parsers_read_the_same_data_and_lines(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = yaml_source.load_yaml(path)
    monkeypatch.setattr(yaml_source, "FAST_LOADER", yaml.SafeLoader)
    slow = yaml_source.load_yaml(path)
    assert fast.data == slow.data and fast.lines == slow.lines
    assert fast.lines  # every file has keys with lines
