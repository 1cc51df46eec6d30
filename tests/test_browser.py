"""The Dagster UI as its users use it: headless Chromium (Debian's `chromium`, driven by Playwright
pointed at the system browser; nothing is downloaded) against `factory ui` on a built flights home.

One `factory ui` (webserver, daemon, code server) serves every test of this module, on a copy of
the session's flights build whose line accepts one debt less (fct_flights' TD11), so that an asset
carries debt. On failure each test saves a screenshot and the HTML of the page it was on; the
failure message names the files.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
import re
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from factory_dagster.cli import main
from tests.conftest import REPO, Build, copy_line, line_args
from tests.processes import background
from tests.test_time import source_days
from tests.test_ui import free_port

pytestmark = pytest.mark.e2e

CHROMIUM = Path(os.environ.get("FACTORY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT = 240.0  # seconds for `dagster dev` to serve the code location on a busy 2-core machine
RUN_TIMEOUT_MS = 300_000  # a run launched from the UI or by the sensor: queued, started, finished
WAIT_MS = 60_000  # a page element to appear
DAY = "2013-06-10"  # the partition the test materializes from the UI
BAD_DAY = "2013-06-11"  # the day whose landing file carries rows the gate refuses
BAD_ORIGIN = "ZZZ"  # not one of the line's origin airports (expect_column_values_to_be_in_set)


@dataclass
class Factory:
    """The home and the instance `factory ui` serves, its address, and where failures go."""

    home: Path
    spec_dir: Path
    url: str
    artifacts: Path

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.dagster_home))


def day_rows(home: Path, day: str) -> int:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        (count,) = con.execute(
            "select count(*) from raw.flights where make_date(year, month, day) = ?", [dt.date.fromisoformat(day)]
        ).fetchall()[0]
        return count
    finally:
        con.close()


def wait_for_ui(url: str, log: Path) -> None:
    """Until the webserver answers with the code location loaded."""
    query = json.dumps({"query": "{ assetNodes { id } }"}).encode()
    deadline = time.monotonic() + UI_TIMEOUT
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                f"{url}/graphql", data=query, method="POST", headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                if json.loads(response.read())["data"]["assetNodes"]:
                    return
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(2)
    raise AssertionError(f"factory ui did not serve within {UI_TIMEOUT:g} s; its log:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def factory(flights_build: Build, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Factory]:
    """`factory ui` on a copy of the session's flights build, its governance reports materialized."""
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: `make setup-test` installs Debian's chromium"
    base = tmp_path_factory.mktemp("browser")
    home = base / "home"
    shutil.copytree(flights_build.home, home)  # the products and the instance that built them
    spec_dir = copy_line(base / "factory")
    debt = spec_dir / "debt.yaml"  # accept one debt less: fct_flights' pass-through columns (TD11)
    text = debt.read_text()
    start = text.index("    - rule: TD11\n      assets: fct_flights")
    debt.write_text(text[:start] + text[text.index("    - rule: TD11\n      assets: dim_carriers") :])
    time_yaml = spec_dir / "time.yaml"
    time_yaml.write_text(time_yaml.read_text().replace("minimum_interval_seconds: 15", "minimum_interval_seconds: 5"))
    line = spec_dir / "line.yaml"  # automation would follow upstream in runs of its own: keep to the test's
    line.write_text(line.read_text().replace("  automation:\n    enabled: true", "  automation:\n    enabled: false"))
    env = {
        **os.environ,
        "FACTORY_HOME": str(home),
        "FACTORY_ROOT": str(spec_dir.parent.parent),
        "FACTORY_LINES": spec_dir.name,
        "DAGSTER_HOME": str(home / "dagster"),
    }
    # The governance reports, as `make demo` leaves them: the debt report and every asset's debt check.
    saved = dict(os.environ)
    os.environ.update({k: env[k] for k in ("FACTORY_HOME", "DAGSTER_HOME")})
    try:
        assert main(["build", "--select", "group:governance", "--home", str(home), *line_args(spec_dir)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    con = duckdb.connect(str(home / "warehouse.duckdb"))  # the day the UI materializes again
    con.execute("delete from raw.flights where make_date(year, month, day) = ?", [dt.date.fromisoformat(DAY)])
    con.close()
    port = free_port()
    log = base / "ui.log"
    factory = Path(sys.executable).with_name("factory")
    with background([str(factory), "ui", "-p", str(port)], env, REPO, log):
        url = f"http://127.0.0.1:{port}"
        wait_for_ui(url, log)
        yield Factory(home, spec_dir, url, base / "screenshots")


@pytest.fixture(scope="module")
def browser(factory: Factory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright  # the browser driver: only the browser tests need it

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that dismisses Dagster's community pop-up whenever it shows."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    page.add_locator_handler(
        page.get_by_text("Join the Dagster community"), lambda: page.get_by_role("button", name="Skip").click()
    )
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def ui(page: Any, factory: Factory, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    """`ui(path)` opens a page of the UI; when the test fails, the last page opened is saved (a
    screenshot and its HTML) and the failure says where."""

    def visit(path: str) -> Any:
        page.goto(f"{factory.url}{path}")
        return page

    failed = request.session.testsfailed  # pytest counts a test's failure before its teardown
    yield visit
    if request.session.testsfailed > failed:
        factory.artifacts.mkdir(parents=True, exist_ok=True)
        shot = factory.artifacts / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        (factory.artifacts / f"{request.node.name}.html").write_text(page.content())
        # Past pytest's capture, so that CI's log names the files.
        print(f"\n{request.node.name} failed: screenshot {shot} (HTML beside it) of {page.url}", file=sys.__stderr__)


def show_markdown(page: Any, label: str) -> str:
    """The rendered text of a markdown metadata value: inline, or in the dialog the UI opens for a long one."""
    row = page.locator("tr", has=page.get_by_text(label, exact=True)).first
    row.wait_for()
    button = row.get_by_text("[Show Markdown]")
    if not button.count():
        return row.locator("table").first.inner_text()
    button.click()
    dialog = page.get_by_role("dialog").filter(has_not_text="Join the Dagster community")
    dialog.locator("table").first.wait_for()
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    text = dialog.inner_text()
    # Escape closes it, unless Dagster's community pop-up came up first and took the key (its
    # locator handler then skips it): press again until the dialog is gone.
    for _ in range(5):
        page.keyboard.press("Escape")
        try:
            dialog.wait_for(state="hidden", timeout=5_000)
            return text
        except PlaywrightTimeoutError:
            continue
    dialog.wait_for(state="hidden")
    return text


def test_lineage_shows_every_group_and_the_chain(ui: Callable[[str], Any], flights_build: Build) -> None:
    graph = flights_build.defs.resolve_asset_graph()
    groups = {graph.get(key).group_name for key in graph.materializable_asset_keys}
    assert {"flights", "governance"} <= groups
    page = ui("/asset-groups")
    for group in sorted(groups):
        page.get_by_text(group, exact=True).first.wait_for()
    # Each link of raw → dbt → features → model → predictions, as the child's upstream lineage shows it.
    chain = ["raw/flights", "stg_flights", "int_flights_enriched", "fct_flights", "flight_features"]
    chain += ["delay_classifier", "delay_predictions"]
    for parent, child in itertools.pairwise(chain):
        parents = graph.get(dg.AssetKey.from_user_string(child)).parent_keys
        assert dg.AssetKey.from_user_string(parent) in parents
        page = ui(f"/assets/{child}?view=lineage&lineageScope=upstream&lineageDepth=1")
        graph_nodes = page.locator("foreignObject")  # the lineage graph draws each asset as one node
        for key in {*parents, dg.AssetKey.from_user_string(child)}:
            graph_nodes.get_by_text(key.path[-1], exact=True).first.wait_for()  # a node shows its name


def test_a_gates_checks_show_the_per_expectation_table(ui: Callable[[str], Any], factory: Factory) -> None:
    latest = json.loads((factory.home / "gates" / "raw.flights" / "latest.json").read_text())
    page = ui("/assets/raw/flights?view=checks&checkDetail=quality_gate")
    page.get_by_text("This is a blocking asset check.").wait_for()
    table = show_markdown(page, "expectations")
    rows = [line for line in table.splitlines() if "\t" in line][1:]  # the header row first
    assert len(rows) == len(latest["outcomes"])
    for row, outcome in zip(rows, latest["outcomes"], strict=True):
        assert row.split("\t")[1].startswith(outcome["expectation"]["type"]), row
        assert ("✅ pass" in row) == outcome["success"], row


def test_debt_shows_on_the_indebted_asset_and_in_the_report(
    ui: Callable[[str], Any], factory: Factory, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--format", "json", "--home", str(factory.home), *line_args(factory.spec_dir)]
    assert main(["debt", *args]) == 0
    debt = json.loads(capsys.readouterr().out)["lines"]["flights"]["debt"]
    (finding,) = [f for f in debt["findings"] if "fct_flights" in f["assets"]]  # the exception removed
    page = ui("/assets/fct_flights?view=checks&checkDetail=technical_debt")
    page.get_by_text("This is a non-blocking asset check.").wait_for()
    page.get_by_text(f"1 debt finding: {finding['rule']} ({finding['severity']})").wait_for()
    findings = show_markdown(page, "findings")
    row = next(line for line in findings.splitlines() if finding["rule"] in line).split("\t")
    assert row[0] == finding["severity"] and row[3] == finding["evidence"] and row[4] == finding["fix"]
    # An asset without debt passes its check; the report's table lists the same finding.
    page = ui("/assets/delay_predictions?view=checks&checkDetail=technical_debt")
    page.get_by_text("no debt found").first.wait_for()
    page = ui("/assets/technical_debt_report")
    report = show_markdown(page, "findings")
    assert "\t".join(row) in report.splitlines()


def finished_run(factory: Factory, tags: dict[str, str], exclude: frozenset[str] = frozenset()) -> dg.DagsterRun:
    """The run with `tags` (but none of `exclude`), once it has finished: what the UI is checked against."""
    instance = factory.instance()
    deadline = time.monotonic() + RUN_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        runs = instance.get_runs(filters=dg.RunsFilter(tags=tags))
        runs = [r for r in runs if r.is_finished and r.run_id not in exclude]
        if runs:
            return runs[0]
        time.sleep(2)
    raise AssertionError(f"no finished run with {tags} within {RUN_TIMEOUT_MS / 1000:g} s")


def test_a_bad_landing_file_fails_the_gate_and_stops_downstream(
    ui: Callable[[str], Any], factory: Factory, tmp_path: Path
) -> None:
    # Upstream's file for the day (replayed aside), with an origin the gate refuses, lands whole.
    assert main(["replay", "--start", BAD_DAY, "--end", BAD_DAY, "--home", str(tmp_path), *line_args()]) == 0
    with (tmp_path / "landing" / "flights" / f"{BAD_DAY}.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == source_days()[dt.date.fromisoformat(BAD_DAY)]
    landed = factory.home / "landing" / "flights" / f"{BAD_DAY}.csv"
    staged = tmp_path / landed.name
    with staged.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "origin": BAD_ORIGIN} for row in rows)
    landed.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staged, landed)

    run = finished_run(factory, {"factory/sensor": "flights_landing", "dagster/partition": BAD_DAY})
    assert run.status == dg.DagsterRunStatus.FAILURE
    downstream = factory.instance().get_latest_materialization_event(dg.AssetKey("stg_flights"))
    assert downstream is not None and downstream.run_id != run.run_id  # nothing past the gate
    (reason,) = [
        json.loads(path.read_text())
        for path in (factory.home / "quarantine" / "raw.flights").glob("*/reason.json")
        if json.loads(path.read_text())["run_id"] == run.run_id
    ]
    assert BAD_ORIGIN in reason["reason"]

    # The run failed red, its log says why in one line; the gate's history shows the failed evaluation.
    page = ui(f"/runs/{run.run_id}")
    page.get_by_text("Failure").first.wait_for()
    page.get_by_text(reason["reason"]).first.wait_for()
    page = ui("/assets/raw/flights?view=checks&checkDetail=quality_gate")
    page.get_by_text("Execution history", exact=True).click()
    page.get_by_text("Failed", exact=True).first.wait_for()


def test_materialize_one_day_from_the_ui(ui: Callable[[str], Any], factory: Factory) -> None:
    assert day_rows(factory.home, DAY) == 0  # the fixture removed the day
    before = frozenset(r.run_id for r in factory.instance().get_runs())
    page = ui("/assets/raw/flights")
    page.get_by_role("button").filter(has_text=re.compile(r"^Materialize")).first.click()
    dialog = page.get_by_role("dialog").filter(has_not_text="Join the Dagster community")
    dialog.get_by_text("Launch runs to materialize raw / flights").wait_for()
    partitions = dialog.get_by_placeholder(re.compile(r"^ex: "))
    partitions.fill(DAY)
    partitions.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch 1 run").click()

    run = finished_run(factory, {"dagster/partition": DAY}, exclude=before)
    assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
    assert day_rows(factory.home, DAY) == source_days()[dt.date.fromisoformat(DAY)]
    page = ui(f"/runs/{run.run_id}")
    page.get_by_text("Success").first.wait_for()
    page = ui(f"/assets/raw/flights?view=partitions&partition={DAY}")
    page.get_by_text(run.run_id[:8]).first.wait_for()
