"""The pages of ``lagoa serve`` in a real browser: Playwright drives Debian's chromium over a server
started as a process on a project with real runs (``tests/serve_project.py``).

Every page is checked against what the project itself says (its run history, lake, quality
results and lineage events), saved as a screenshot in ``test-artifacts/serve/``, and must log no
console error and throw no script error. One browser serves the module; each test browses in a
fresh context. The retry test changes the run history, so it comes last.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import Error as BrowserError

from lagoa.core.names import RUN_ID
from lagoa.orchestrate.observe.lineage import kept_events
from lagoa.orchestrate.project import Project
from lagoa.publish.docs import DOCS
from lagoa.serve.console import RefusedError, check
from tests.serve_project import ServedProject, build_project, server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parents[1] / "test-artifacts" / "serve"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
RETRY_MS = 120_000
"""How long the retry may take to show on the run's page (it starts a `lagoa run retry` process)."""
TABLE = "silver.erp_orders"
GOLD = "gold.fct_daily_store_metrics"


@dataclass(frozen=True)
class Site:
    url: str
    served: ServedProject
    project: Project
    """The served project, read by the tests to know what each page must show."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    # Lineage kept (observe.lineage) before the runs, so that the column lineage of the models is known.
    served = build_project(
        tmp_path_factory.mktemp("serve-browser") / "project", {"lineage": {"transport": "file"}}
    )
    project = Project.load(served.root)
    try:
        with server(served.root) as url:
            yield Site(url, served, project)
    finally:
        project.close()


MISSING_CHROMIUM = (
    f"{CHROMIUM} is missing: the browser tests drive Debian's chromium. "
    "Run `make system-packages` (or `apt-get install chromium`)."
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(MISSING_CHROMIUM)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Console:
    """The console errors and uncaught script errors of one browsing context's pages."""

    url: str
    errors: list[str] = field(default_factory=list)

    def message(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not self._dbt_docs_own(message.location.get("url", "")):
            self.errors.append(f"{message.location.get('url')}: {message.text}")

    def page_error(self, error: BrowserError) -> None:
        self.errors.append(f"uncaught: {error}")

    def _dbt_docs_own(self, url: str) -> bool:
        """dbt's generated docs site (not Lagoa's page) puts Angular expressions in ``src``
        attributes, which the browser requests before Angular replaces them: those 404s only."""
        return url.startswith(f"{self.url}/docs-site/") and ("%7B%7B" in url or "%7Brequire(" in url)


@contextmanager
def browsing(browser: Browser, site: Site, viewport: ViewportSize) -> Iterator[Page]:
    """A page in a fresh context; it must have logged no console error when the block ends."""
    context = browser.new_context(viewport=viewport, accept_downloads=True, base_url=site.url)
    context.set_default_timeout(30_000)
    console = Console(site.url)
    page = context.new_page()
    page.on("console", console.message)
    page.on("pageerror", console.page_error)
    try:
        yield page
    finally:
        context.close()
    assert console.errors == [], "the pages logged errors:\n" + "\n".join(console.errors)


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    with browsing(browser, site, DESKTOP) as found:
        yield found


def snap(page: Page, name: str) -> None:
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


def cells(rows: Locator) -> list[list[str]]:
    """The trimmed text of every cell of the rows."""
    found: list[list[str]] = rows.evaluate_all(
        "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()))"
    )
    return found


def check_phone(page: Page, table: str) -> None:
    """At a phone's width: nothing overflows the page sideways, the navigation shows, and the
    table scrolls inside its own box until its last column is in view."""
    width: int = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the page is {width}px wide at a {PHONE['width']}px viewport"
    links = page.locator("header.top nav a")
    expect(links).to_have_count(7)
    for link in links.all():
        expect(link).to_be_in_viewport()
    box = page.locator(table).locator("xpath=ancestor::div[contains(@class, 'scroll')][1]")
    scroll: dict[str, int] = box.evaluate(
        "e => { e.scrollLeft = e.scrollWidth; return {width: e.scrollWidth, shown: e.clientWidth, left: e.scrollLeft}; }"
    )
    assert scroll["width"] > scroll["shown"] and scroll["left"] > 0, scroll
    last = page.locator(f"{table} thead th").last
    last.scroll_into_view_if_needed()
    bounds = last.bounding_box()
    assert bounds is not None
    assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= PHONE["width"] + 1, bounds


def test_chromium_is_installed() -> None:
    """Without it every test below fails at its set-up: this one says why, first."""
    assert CHROMIUM.exists(), MISSING_CHROMIUM


def test_overview_shows_every_pipeline_last_run_and_both_charts(
    browser: Browser, site: Site, page: Page
) -> None:
    state = site.project.state
    page.goto("/")
    for pipeline in ("daily", "sensor_feed"):
        (last,) = state.runs(pipeline=pipeline, limit=1)
        row = page.locator("#pipelines tbody tr").filter(
            has=page.get_by_role("link", name=pipeline, exact=True)
        )
        shown = row.locator("td").nth(1).locator("a.state")
        expect(shown).to_have_text(last.state)
        expect(shown).to_have_attribute("href", f"/runs/{last.run_id}")
    assert {r.state for r in state.runs()} == {"succeeded", "failed"}
    ran = list(dict.fromkeys(r.pipeline for r in reversed(state.runs()) if r.ended_at is not None))
    landed = list(dict.fromkeys(p for _, p, _ in state.rows_per_day(datetime.now(UTC) - timedelta(days=30))))
    assert ran == ["daily", "sensor_feed"] and landed == ["daily"]
    for chart, names in (("durations", ran), ("landed", landed)):
        plot = page.locator(f'[data-chart="{chart}"]')
        expect(plot.locator("canvas")).to_have_count(1)
        expect(plot.locator(".u-legend .u-label")).to_have_text(["Time", *names])
    snap(page, "overview")

    with browsing(browser, site, PHONE) as phone:
        phone.goto("/")
        expect(phone.locator('[data-chart="durations"] canvas')).to_have_count(1)
        snap(phone, "overview-phone")
        check_phone(phone, "#pipelines")


def test_runs_list_and_its_filters(site: Site, page: Page) -> None:
    state = site.project.state
    ids = page.locator("#runs tbody tr td:first-child code")
    page.goto("/runs")
    expect(ids).to_have_text([r.run_id for r in state.runs()])
    expect(page.locator("h1 .muted")).to_have_text(str(state.count_runs()))
    snap(page, "runs")

    page.locator("select[name=pipeline]").select_option("sensor_feed")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"pipeline=sensor_feed"))
    expect(ids).to_have_text([r.run_id for r in state.runs(pipeline="sensor_feed")])
    assert [r.run_id for r in state.runs(pipeline="sensor_feed")] == [site.served.failed_run]

    page.locator("select[name=pipeline]").select_option("")
    page.locator("select[name=state]").select_option("succeeded")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"state=succeeded"))
    expect(ids).to_have_text([r.run_id for r in state.runs(state="succeeded")])
    expect(page.locator("#runs tbody tr td:nth-child(3)")).to_have_text(["succeeded"])
    assert [r.run_id for r in state.runs(state="succeeded")] == [site.served.daily_run]


def test_run_page_shows_the_timeline_and_every_attempt_with_its_log(
    browser: Browser, site: Site, page: Page
) -> None:
    run = site.project.state.run(site.served.daily_run)
    assert run is not None and run.state == "succeeded"
    page.goto(f"/runs/{run.run_id}")
    expect(page.locator("#run-state")).to_have_text("succeeded")

    # The timeline: one bar per attempt that ran, and under each transform attempt its dbt nodes.
    ran = [a for a in run.attempts if a.attempt > 0]
    expect(page.locator("svg.gantt g.bar-row:not(.nested) text")).to_have_text(
        [f"{a.task} #{a.attempt}" for a in ran]
    )
    bars: list[dict[str, Any]] = page.locator("svg.gantt g.bar-row").evaluate_all(
        """rows => rows.map(g => {
             const r = g.querySelector('rect');
             return {nested: g.classList.contains('nested'), label: g.querySelector('text').textContent,
                     title: g.querySelector('title').textContent,
                     x: +r.getAttribute('x'), width: +r.getAttribute('width')};
           })"""
    )
    parent: dict[str, Any] | None = None
    models = set()
    for bar in bars:
        if not bar["nested"]:
            parent = bar
            continue
        assert parent is not None and parent["label"].startswith("transform_"), bar
        assert parent["x"] - 1 <= bar["x"] <= parent["x"] + parent["width"] + 1, (parent, bar)
        kind, name = bar["title"].split(":", 1)[0].split(" ", 1)
        if kind == "model":
            models.add(name)
    manifest = site.project.workspace.dbt_manifest_document()
    assert models == {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}

    # The attempts, in the order they started, each with its log.
    attempts = page.locator("#attempts tr.attempt")
    expect(attempts).to_have_count(len(run.attempts))
    shown = attempts.evaluate_all("rows => rows.map(r => [r.dataset.task, r.dataset.attempt])")
    assert shown == [[a.task, str(a.attempt)] for a in run.attempts]
    expect(attempts.locator("td:nth-child(3)")).to_have_text([a.state for a in run.attempts])
    with_log = [[a.task, str(a.attempt)] for a in run.attempts if a.log]
    assert (
        with_log
        and page.locator("#attempts tr.log-row").evaluate_all(
            "rows => rows.map(r => [r.previousElementSibling.dataset.task, r.previousElementSibling.dataset.attempt])"
        )
        == with_log
    )
    logged = next(a for a in run.attempts if a.task == "ingest_orders")
    assert logged.log
    log = page.locator(f'tr.attempt[data-task="ingest_orders"][data-attempt="{logged.attempt}"] + tr.log-row')
    expect(log.locator("pre.log")).to_be_hidden()
    log.locator("summary").click()
    expect(log.locator("pre.log")).to_be_visible()
    assert (log.locator("pre.log").text_content() or "").strip() == logged.log.strip()
    snap(page, "run-daily")

    with browsing(browser, site, PHONE) as phone:
        phone.goto(f"/runs/{run.run_id}")
        expect(phone.locator("#run-state")).to_have_text("succeeded")
        snap(phone, "run-daily-phone")
        check_phone(phone, "#attempts")


def test_tables_list_every_table_with_its_row_count(site: Site, page: Page) -> None:
    page.goto("/tables")
    expected = {t.identifier: f"{t.rows:,}" for t in site.project.tables()}
    assert TABLE in expected and f"{TABLE}__quarantine" in expected and GOLD in expected
    rows = page.locator("#tables tbody tr")
    expect(rows).to_have_count(len(expected))
    assert {r[0]: r[1] for r in cells(rows)} == expected
    snap(page, "tables")


def test_table_page_shows_schema_layout_snapshots_files_preview_and_quarantine(
    site: Site, page: Page
) -> None:
    project = site.project
    table = project.lake.table(TABLE)
    assert table is not None
    info = next(t for t in project.tables() if t.identifier == TABLE)
    schema = table.schema()
    page.goto(f"/tables/{TABLE}")

    expect(page.locator("#schema tbody tr td:nth-child(2)")).to_have_text([f.name for f in schema.fields])
    spec = [f"{p.transform}({schema.find_column_name(p.source_id)})" for p in table.spec().fields]
    assert spec == ["day(order_ts)"]
    expect(page.locator("#partition-spec")).to_have_text(" ".join(spec))

    snapshots = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
    run_ids = [s.summary.additional_properties.get(RUN_ID) if s.summary else None for s in snapshots]
    assert site.served.daily_run in run_ids
    expect(page.locator("#snapshots tbody tr td:nth-child(3)")).to_have_text([r or "" for r in run_ids])

    files = page.locator("#files tbody tr")
    expect(files).to_have_count(info.files)
    assert sum(int(r[1]) for r in cells(files)) == info.rows

    columns, _ = project.query(f"select * from {TABLE} limit 0")
    expect(page.locator("#preview thead th")).to_have_text(columns)
    preview = cells(page.locator("#preview tbody tr"))
    assert len(preview) == min(20, info.rows)
    keys = ", ".join(r[0] for r in preview)
    _, stored = project.query(f"select order_id, store_id, status from {TABLE} where order_id in ({keys})")
    by_key = {str(r[0]): [str(v) for v in r] for r in stored}
    assert [[r[0], r[1], r[columns.index("status")]] for r in preview] == [by_key[r[0]] for r in preview]

    _, reasons = project.query(
        f"select _lagoa_reason, count(*) from {TABLE}__quarantine group by 1 order by 2 desc, 1"
    )
    total = sum(int(n) for _, n in reasons)
    expect(page.locator("#quarantine .muted")).to_have_text(f"{total} rows")
    expect(page.locator("#reason option")).to_have_count(len(reasons) + 1)
    reason, count = reasons[0]
    assert count > 1 and len(reasons) > 1  # the filter leaves some rows out
    page.locator("#reason").select_option(value=str(reason))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"reason="))
    expect(page.locator("#quarantine .muted")).to_have_text(f"{count} rows")
    header = page.locator("#quarantine-rows thead th").all_text_contents()
    shown = cells(page.locator("#quarantine-rows tbody tr"))
    assert len(shown) == count
    assert {r[header.index("_lagoa_reason")] for r in shown} == {reason}
    snap(page, "table")


def test_quality_shows_the_latest_run_results_and_a_table_history(site: Site, page: Page) -> None:
    project = site.project
    run_id, validations = project.quality_results()
    assert run_id == site.served.daily_run and validations
    page.goto("/quality")
    expect(page.locator("select[name=run_id]")).to_have_value(run_id)
    sections = page.locator("section.validation")
    expect(sections).to_have_count(len(validations))
    for section, validation in zip(
        sections.all(), sorted(validations, key=lambda v: (v.table, v.suite)), strict=True
    ):
        passed = sum(r.success for r in validation.results)
        expect(section.locator("h2")).to_have_text(
            f"{validation.table} · {validation.suite} {passed}/{len(validation.results)} passed"
        )
        expected = [
            [
                str(r.expectation.index),
                r.expectation.label,
                "passed" if r.success else "failed",
                "" if r.unexpected_count is None else str(r.unexpected_count),
                "" if r.element_count is None else str(r.element_count),
            ]
            for r in validation.results
        ]
        shown = cells(section.locator("tbody tr"))
        assert [[r[0], r[1], r[3], r[4], r[5]] for r in shown] == expected
    snap(page, "quality")

    page.goto(f"/quality/tables/{TABLE}")
    validated = [
        v
        for r in reversed(project.state.runs())
        for v in project.quality_results(r.run_id)[1]
        if v.table == TABLE
    ][::-1]
    assert validated
    labels = sorted({r.expectation.label for v in validated for r in v.results})
    expect(page.locator("table.history th.vertical")).to_have_count(len(labels))
    assert [h.get_attribute("title") for h in page.locator("table.history th.vertical").all()] == labels
    rows = page.locator("table.history tbody tr")
    expect(rows.locator("td:first-child")).to_have_text([v.run_id for v in validated])
    for row, validation in zip(rows.all(), validated, strict=True):
        results = {r.expectation.label: r for r in validation.results}
        classes = row.locator("td.cell").evaluate_all("cells => cells.map(c => c.className)")
        assert classes == [
            "cell " + ("" if label not in results else "pass" if results[label].success else "fail")
            for label in labels
        ]
    snap(page, "quality-table")


def test_lineage_draws_the_graph_focuses_a_node_and_loads_column_lineage(site: Site, page: Page) -> None:
    whole = page.request.get(f"{site.url}/api/lineage").json()
    page.goto("/lineage")
    nodes = page.locator("#lineage a.node")
    expect(nodes).to_have_count(len(whole["nodes"]))
    assert sorted(n.get_attribute("data-id") or "" for n in nodes.all()) == sorted(
        n["id"] for n in whole["nodes"]
    )
    expect(page.locator("#lineage .edges path")).to_have_count(len(whole["edges"]))
    assert GOLD in {n["id"] for n in whole["nodes"]}
    snap(page, "lineage")

    page.locator(f'#lineage a.node[data-id="{GOLD}"]').click()
    expect(page).to_have_url(re.compile(rf"focus={re.escape(quote(GOLD))}"))
    focused = page.request.get(f"{site.url}/api/lineage", params={"focus": GOLD}).json()
    assert 1 < len(focused["nodes"]) < len(whole["nodes"])
    expect(nodes).to_have_count(len(focused["nodes"]))
    expect(page.locator("#lineage a.node.focus")).to_have_attribute("data-id", GOLD)

    events = kept_events(site.project.workspace)
    assert events, "the runs kept no lineage event: observe.lineage is not set"
    # A published table's columns are its model's (main.<model>), which dbt's lineage names.
    columns = site.project.lineage(GOLD).columns or site.project.lineage(f"main.{GOLD.split('.')[1]}").columns
    assert {"revenue", "orders"} <= set(columns)
    page.locator("#columns-button").click()
    rows = page.locator("#column-lineage tbody tr")
    expect(rows).to_have_count(len(columns))
    assert cells(rows) == [
        [column, ", ".join(f"{t}.{c}" for t, c in inputs)] for column, inputs in sorted(columns.items())
    ]
    snap(page, "lineage-focus")


def type_sql(page: Page, sql: str) -> None:
    """Replace the CodeMirror editor's text by typing, as a user does."""
    page.locator(".CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(sql)


def test_query_runs_sql_typed_in_the_editor_refuses_writes_and_downloads_csv(
    site: Site, page: Page, tmp_path: Path
) -> None:
    sql = f"select store_id, count(*) as orders, sum(quantity) as units from {TABLE} group by store_id order by store_id"
    columns, rows = site.project.query(sql)
    expected = [[str(v) for v in row] for row in rows]
    assert len(expected) > 1
    page.goto("/query")
    expect(page.locator(".CodeMirror")).to_be_visible()
    type_sql(page, sql)
    page.locator("#run-query").click()
    expect(page.locator("#query-summary")).to_contain_text(f"{len(expected)} row(s)")
    assert [h.split(" ", 1)[0] for h in page.locator("#query-result thead th").all_text_contents()] == columns
    assert cells(page.locator("#query-result tbody tr")) == expected
    snap(page, "query")

    with page.expect_download() as download:
        page.locator("#download-csv").click()
    with Path(download.value.path()).open(newline="") as file:
        assert list(csv.reader(file)) == [columns, *expected]

    written = tmp_path / "x.csv"
    for refused in (f"drop table {TABLE}", f"copy (select 1) to '{written}'"):
        with pytest.raises(RefusedError) as why:
            check(refused)
        type_sql(page, refused)
        page.locator("#run-query").click()
        expect(page.locator("#query-error")).to_have_text(f"RefusedError: {why.value.message}")
        expect(page.locator("#query-result")).to_have_count(0)
    snap(page, "query-refused")
    assert not written.exists()
    info = next(t for t in site.project.tables() if t.identifier == TABLE)
    assert site.project.query(f"select count(*) from {TABLE}")[1] == [(info.rows,)]


def test_docs_page_links_to_the_published_dbt_docs_site(site: Site, page: Page) -> None:
    assert site.project.storage.read_bytes(f"{DOCS}/index.html") is not None
    page.goto("/docs")
    link = page.locator("#docs-link")
    expect(link).to_have_attribute("href", "/docs-site/index.html")
    snap(page, "docs")
    link.click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(site.url)}/docs-site/index.html(#.*)?$"))
    expect(page).to_have_title(re.compile("dbt", re.IGNORECASE))
    page.wait_for_load_state("networkidle")
    snap(page, "docs-site")


def test_retry_of_the_failed_run_shows_its_new_attempts_live(site: Site, page: Page) -> None:
    state = site.project.state
    run_id = site.served.failed_run
    before = state.run(run_id)
    assert before is not None and before.state == "failed"
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#run-state")).to_have_text("failed")
    expect(
        page.locator('tr.attempt[data-task="ingest_sensors"][data-attempt="1"] td:nth-child(3)')
    ).to_have_text("failed")
    snap(page, "run-failed")

    site.served.flag.touch()
    page.get_by_role("button", name=re.compile("Retry failed tasks")).click()
    expect(page).to_have_url(re.compile(rf"/runs/{re.escape(run_id)}\?retried="))
    page.evaluate("window.lagoaNotReloaded = true")  # what follows comes by htmx, not by reloading
    retried = page.locator('tr.attempt[data-task="ingest_sensors"][data-attempt="2"] td:nth-child(3)')
    expect(retried).to_have_text("succeeded", timeout=RETRY_MS)
    expect(page.locator("#run-state")).to_have_text("succeeded", timeout=RETRY_MS)
    assert page.evaluate("window.lagoaNotReloaded") is True

    after = state.run(run_id)
    assert after is not None and after.state == "succeeded"
    assert any(
        a.task == "ingest_sensors" and a.attempt == 2 and a.state == "succeeded" for a in after.attempts
    )
    shown = page.locator("#attempts tr.attempt").evaluate_all(
        "rows => rows.map(r => [r.dataset.task, r.dataset.attempt, r.cells[2].textContent.trim()])"
    )
    assert shown == [[a.task, str(a.attempt), a.state] for a in after.attempts]
    expect(page.locator("#retry")).to_have_count(0)
    snap(page, "run-retried")
