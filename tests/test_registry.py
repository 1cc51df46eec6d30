"""The model registry: versions by content hash, a serving history, and rollback only to served versions."""

from __future__ import annotations

import json
from pathlib import Path
from threading import Thread

import pytest
from sklearn.linear_model import LogisticRegression

from factory_dagster.storage.artifacts import ModelRegistry


def fitted(c: float) -> LogisticRegression:
    return LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def test_retraining_to_the_same_bytes_keeps_the_version_and_its_history(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = registry.save(fitted(1.0), {"run_id": "a"})
    registry.promote(first.version)
    again = registry.save(fitted(1.0), {"run_id": "b"})
    assert again.version == first.version
    assert again.created_at == first.created_at
    assert again.details == {"run_id": "b"}
    assert again.was_served and len(registry.versions()) == 1


def test_promote_records_each_time_a_version_starts_being_served(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    one, two = registry.save(fitted(1.0), {}), registry.save(fitted(0.01), {})
    assert one.version != two.version and not one.was_served
    registry.promote(one.version)
    registry.promote(one.version)  # already served: no new entry
    registry.promote(two.version)
    registry.promote(one.version)
    assert len(registry.get(one.version).served_at) == 2
    assert len(registry.get(two.version).served_at) == 1
    with pytest.raises(KeyError, match="model version nope not found"):
        registry.promote("nope")
    assert registry.current().version == one.version


def test_a_registry_written_before_serving_was_recorded_counts_its_current_as_served(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    record = registry.save(fitted(1.0), {})
    index = json.loads(registry.index_path.read_text())
    index["current"] = record.version
    del index["versions"][record.version]["served_at"]
    registry.index_path.write_text(json.dumps(index))
    assert registry.current().served_at == [record.created_at]


def test_concurrent_saves_lose_no_version(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    models = [fitted(c) for c in (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)]
    threads = [Thread(target=registry.save, args=(m, {})) for m in models]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(registry.versions()) == len(models)
