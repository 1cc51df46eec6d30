"""Model artifacts: saved with a SHA-256, verified against it before they are ever unpickled."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from factory_dagster.storage.atomic import atomic_write_bytes, atomic_write_json

T = TypeVar("T")


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
    served_at: list[str] = field(default_factory=list)  # each time it started being served
    attachments: dict[str, dict[str, str]] = field(default_factory=dict)  # name → {file, sha256}

    @property
    def was_served(self) -> bool:
        return bool(self.served_at)


@contextlib.contextmanager
def _locked_index(directory: Path, path: Path, read: Callable[[], dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A JSON index for a read-modify-write under a file lock, written back atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".registry.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            index = read()
            yield index
            atomic_write_json(path, index)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _spans(starts: list[tuple[str, T]]) -> list[tuple[dt.datetime, dt.datetime | None, T]]:
    """(from, until or None for the last, what) from the times each thing started serving, oldest first."""
    ordered = sorted(
        ((dt.datetime.fromisoformat(at), what) for at, what in starts),
        key=lambda start: start[0],  # what served does not compare: equal times keep their recorded order
    )
    return [
        (start, ordered[i + 1][0] if i + 1 < len(ordered) else None, what) for i, (start, what) in enumerate(ordered)
    ]


def _during(history: list[tuple[dt.datetime, dt.datetime | None, T]], start: dt.datetime, end: dt.datetime) -> list[T]:
    """What served at any moment in [start, end), in the order it served."""
    return [what for began, until, what in history if began < end and (until is None or until > start)]


class ModelRegistry:
    """Versions of one model in `models/<name>/`, and which one is served (`current`)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.index_path = directory / "registry.json"

    def _index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"current": None, "versions": {}}
        index = json.loads(self.index_path.read_text(encoding="utf-8"))
        current = index.get("current")
        if current and not index["versions"][current].get("served_at"):
            # A registry written before serving was recorded: its current version was served.
            index["versions"][current]["served_at"] = [index["versions"][current]["created_at"]]
        return index

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """The index, for a read-modify-write that concurrent runs (a retrain, a rollback) cannot interleave."""
        with _locked_index(self.directory, self.index_path, self._index) as index:
            yield index

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

    def serving_history(self) -> list[tuple[dt.datetime, dt.datetime | None, ModelVersion]]:
        """Who served when: (from, until or None for the current one, version), oldest first,
        from every time a version started being served (a promotion or a rollback)."""
        return _spans([(at, version) for version in self.versions() for at in version.served_at])

    def served_during(self, start: dt.datetime, end: dt.datetime) -> list[ModelVersion]:
        """The versions that served at any moment in [start, end), in the order they served."""
        return _during(self.serving_history(), start, end)

    def save(self, estimator: Any, details: dict[str, Any]) -> ModelVersion:
        """Store a fitted estimator as a version named by its hash (not served until promoted).

        Retraining to the same bytes (same data, spec and seed) gives the same version: it keeps
        its first `created_at` and its serving history.
        """
        import joblib

        buffer = io.BytesIO()
        joblib.dump(estimator, buffer, compress=3)
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        version = sha[:12]
        file = f"{version}.joblib"
        atomic_write_bytes(self.directory / file, data)
        with self._locked() as index:
            known = index["versions"].get(version)
            record = ModelVersion(
                version,
                sha,
                file,
                known["created_at"] if known else dt.datetime.now(dt.UTC).isoformat(),
                details,
                known.get("served_at", []) if known else [],
                known.get("attachments", {}) if known else {},
            )
            index["versions"][version] = asdict(record)
        return record

    def promote(self, version: str) -> ModelVersion:
        """Serve `version` from now on (the registry swap is atomic); returns it."""
        with self._locked() as index:
            entry = index["versions"].get(version)
            if entry is None:
                raise KeyError(f"model version {version} not found in {self.index_path}")
            if index["current"] != version:
                entry["served_at"] = [*entry.get("served_at", []), dt.datetime.now(dt.UTC).isoformat()]
            index["current"] = version
            return ModelVersion(**entry)

    def attach(self, version: str, name: str, data: bytes) -> ModelVersion:
        """Store a file beside a version (e.g. its training reference), its SHA-256 in the index."""
        file = f"{version}.{name}"
        atomic_write_bytes(self.directory / file, data)
        with self._locked() as index:
            entry = index["versions"].get(version)
            if entry is None:
                raise KeyError(f"model version {version} not found in {self.index_path}")
            entry.setdefault("attachments", {})[name] = {"file": file, "sha256": hashlib.sha256(data).hexdigest()}
            return ModelVersion(**entry)

    def attachment(self, record: ModelVersion, name: str) -> bytes | None:
        """A version's attached file, checked against its recorded SHA-256; None when it has none."""
        entry = record.attachments.get(name)
        if entry is None:
            return None
        path = self.directory / entry["file"]
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ArtifactIntegrityError(f"{path}: SHA-256 does not match the recorded {entry['sha256'][:16]}…")
        return data

    def verified_bytes(self, record: ModelVersion, expected_sha256: str | None = None) -> bytes:
        """The artifact's bytes, read once, after checking their SHA-256 (nothing is unpickled)."""
        path = self.directory / record.file
        data = path.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        for expected in filter(None, (record.sha256, expected_sha256)):
            if actual != expected:
                raise ArtifactIntegrityError(
                    f"{path}: SHA-256 {actual[:16]}… does not match the recorded {expected[:16]}…; refusing to load it"
                )
        return data

    def load(self, version: str | None = None, expected_sha256: str | None = None) -> tuple[Any, ModelVersion]:
        """Load a version (the served one by default) after checking its SHA-256.

        Only the bytes that were hashed are unpickled: a file swapped after the check never loads.
        """
        record = self.get(version) if version else self.current()
        if record is None:
            raise FileNotFoundError(f"no served model version in {self.index_path}")
        data = self.verified_bytes(record, expected_sha256)
        import joblib

        return joblib.load(io.BytesIO(data)), record


@dataclass(frozen=True)
class SlotTenure:
    """One time a model version started serving a slot (as its champion), and why."""

    model: str
    version: str
    sha256: str
    served_at: str
    reason: str


class SlotRegistry:
    """Which member model version serves a serving slot (its champion), and since when, in
    `models/<slot>/slot.json`; the versions themselves live in their models' registries."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.index_path = directory / "slot.json"

    def _index(self) -> dict[str, Any]:
        if not self.index_path.exists():
            return {"history": []}
        return json.loads(self.index_path.read_text(encoding="utf-8"))

    def history(self) -> list[SlotTenure]:
        """Every champion in the order it started serving (a version may come back: a rollback)."""
        return [SlotTenure(**entry) for entry in self._index()["history"]]

    def champion(self) -> SlotTenure | None:
        history = self.history()
        return history[-1] if history else None

    def serve(self, model: str, version: str, sha256: str, reason: str) -> SlotTenure:
        """Make `model`'s `version` the slot's champion from now on (the index swap is atomic)."""
        tenure = SlotTenure(model, version, sha256, dt.datetime.now(dt.UTC).isoformat(), reason)
        with _locked_index(self.directory, self.index_path, self._index) as index:
            index["history"].append(asdict(tenure))
        return tenure

    def serving_history(self) -> list[tuple[dt.datetime, dt.datetime | None, SlotTenure]]:
        """Who served when: (from, until or None for the champion, tenure), oldest first."""
        return _spans([(tenure.served_at, tenure) for tenure in self.history()])

    def served_during(self, start: dt.datetime, end: dt.datetime) -> list[SlotTenure]:
        """The champions at any moment in [start, end), in the order they served."""
        return _during(self.serving_history(), start, end)
