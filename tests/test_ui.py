"""`factory ui` serves the line in the Dagster webserver: the asset graph raw → dbt → features →
model → predictions, the gates as checks, the sensors and schedules (asked through GraphQL)."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.processes import background

QUERY = """
{
  assetNodes { assetKey { path } groupName dependencyKeys { path } assetChecksOrError {
    ... on AssetChecks { checks { name blocking } } } }
  repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name } schedules { name } } } }
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/graphql",
                method="POST",
                data=json.dumps({"query": QUERY}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                data = json.loads(response.read())["data"]
                if data["assetNodes"]:
                    return data
        except (urllib.error.URLError, ConnectionError, KeyError, TypeError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"the UI did not answer within {timeout} s: {last}")


@pytest.mark.e2e  # the whole `dagster dev` stack: webserver, daemon and code server (~30 s)
def test_factory_ui_serves_the_line(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FACTORY_HOME": str(tmp_path / "home"), "FACTORY_ROOT": str(REPO), "FACTORY_LINES": "flights"}
    env.pop("DAGSTER_HOME", None)
    factory = Path(sys.executable).with_name("factory")
    with background([str(factory), "ui", "-p", str(port)], env, REPO, tmp_path / "ui.log"):
        data = graphql(port)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    deps = {key: {"/".join(d["path"]) for d in n["dependencyKeys"]} for key, n in nodes.items()}
    assert deps["stg_flights"] == {"raw/flights"}
    assert "stg_flights" in deps["int_flights_enriched"]
    assert "fct_flights" in deps["flight_features"]
    assert deps["delay_classifier"] == {"flight_features"}
    assert {"delay_classifier", "flight_features"} <= deps["delay_predictions"]
    assert nodes["flight_features"]["groupName"] == "flights"  # the line's group
    gate = [c for c in nodes["raw/flights"]["assetChecksOrError"]["checks"] if c["name"] == "quality_gate"]
    assert gate == [{"name": "quality_gate", "blocking": True}]
    # Debt on the graph: every asset of the line has a technical_debt check, each model its score; none blocks.
    debt = {
        key
        for key, n in nodes.items()
        if {"name": "technical_debt", "blocking": False} in n["assetChecksOrError"]["checks"]
    }
    assert debt == {key for key, n in nodes.items() if n["groupName"] != "governance"}
    assert {"name": "ml_test_score", "blocking": False} in nodes["delay_classifier"]["assetChecksOrError"]["checks"]
    (repository,) = data["repositoriesOrError"]["nodes"]
    sensors = {s["name"] for s in repository["sensors"]}
    assert {"flights_landing", "flights_automation", "openlineage_on_success"} <= sensors
    assert {s["name"] for s in repository["schedules"]} == {"flights_daily", "weekly_retrain"}
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()
