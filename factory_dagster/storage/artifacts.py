"""Model artifacts: saved with a SHA-256, verified against it before they are ever unpickled."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from factory_dagster.storage.atomic import atomic_write_bytes, atomic_write_json


class ArtifactIntegrityError(Exception):
    """An artifact's bytes do not match the hash recorded when it was saved."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ModelVersion:
    version: str
    sha256: str
    file: str  # relative to the registry folder
    created_at: str
    details: dict[str, Any] = field(default_factory=dict)


class ModelRegistry:
    """Versions of one model in `models/<name>/`, and which one is served (`current`)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.index_path = directory / "registry.json"

    def _index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"current": None, "versions": {}}
        return json.loads(self.index_path.read_text(encoding="utf-8"))

    def versions(self) -> list[ModelVersion]:
        return [ModelVersion(**v) for v in self._index()["versions"].values()]

    def get(self, version: str) -> ModelVersion:
        entry = self._index()["versions"].get(version)
        if entry is None:
            raise KeyError(f"model version {version} not found in {self.index_path}")
        return ModelVersion(**entry)

    def current(self) -> ModelVersion | None:
        index = self._index()
        return ModelVersion(**index["versions"][index["current"]]) if index["current"] else None

    def save(self, estimator: Any, details: dict[str, Any]) -> ModelVersion:
        """Store a fitted estimator as a new (not yet served) version named by its hash."""
        import joblib

        buffer = io.BytesIO()
        joblib.dump(estimator, buffer, compress=3)
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        version = sha[:12]
        file = f"{version}.joblib"
        atomic_write_bytes(self.directory / file, data)
        record = ModelVersion(version, sha, file, dt.datetime.now(dt.UTC).isoformat(), details)
        index = self._index()
        index["versions"][version] = asdict(record)
        atomic_write_json(self.index_path, index)
        return record

    def promote(self, version: str) -> None:
        """Serve `version` from now on (the registry swap is atomic)."""
        index = self._index()
        if version not in index["versions"]:
            raise KeyError(f"model version {version} not found in {self.index_path}")
        index["current"] = version
        atomic_write_json(self.index_path, index)

    def load(self, version: str | None = None, expected_sha256: str | None = None) -> tuple[Any, ModelVersion]:
        """Load a version (the served one by default) after checking its SHA-256."""
        record = self.get(version) if version else self.current()
        if record is None:
            raise FileNotFoundError(f"no served model version in {self.index_path}")
        path = self.directory / record.file
        actual = sha256_file(path)
        for expected in filter(None, (record.sha256, expected_sha256)):
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"{path}: SHA-256 {actual[:16]}… does not match the recorded {expected[:16]}…; "
                    "refusing to load it"
                )
        import joblib

        return joblib.load(path), record
