"""HTTP sources against the simulated API server, started as a process on loopback: every
pagination strategy, auth, outages, 429 with Retry-After, killed runs, late records, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lagoa.core.errors import SourceError
from lagoa.orchestrate.project import Project
from tests.conftest import count

SERVER = Path(__file__).parents[1] / "examples" / "medallion_apis" / "server.py"
TOKEN = "tok-5ecret-987"
RECORDS = 500

Start = Callable[..., str]


@pytest.fixture
def api() -> Iterator[Start]:
    """Start the simulated server with options; returns its base URL."""
    started: list[subprocess.Popen[str]] = []

    def start(*options: str) -> str:
        process = subprocess.Popen(
            [
                sys.executable,
                str(SERVER),
                "--port",
                "0",
                "--records",
                str(RECORDS),
                "--token",
                TOKEN,
                *options,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on "), line
        return line.split()[-1]

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


def admin(base: str, path: str, method: str = "GET") -> object:
    request = urllib.request.Request(base + path, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def project_for(tmp_path: Path, source: str) -> Project:
    config = "name: apis\nsources:\n  items:\n" + textwrap.indent(textwrap.dedent(source), "    ")
    (tmp_path / "lagoa.yml").write_text(config)
    return Project.load(tmp_path)


BEARER = 'auth: {type: bearer, token: "${env:API_TOKEN}"}'
COMMON = f"""
kind: http
primary_key: [id]
ordering: updated_at
columns: {{id: long, updated_at: timestamptz}}
{BEARER}
"""


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_TOKEN", TOKEN)


STRATEGIES = {
    "page_number": ("/v1/rates", "data", "paginate: {type: page_number, size_param: per_page, size: 70}", {}),
    "offset": (
        "/v1/tickets",
        "",
        "paginate: {type: offset, size_param: limit, size: 90}",
        {"paging": "offset"},
    ),
    "cursor": (
        "/v1/observations",
        "observations",
        "paginate: {type: cursor, path: meta.next_cursor}",
        {"limit": "80"},
    ),
    "next_url": ("/v1/orders", "results", "paginate: {type: next_url, path: next}", {"limit": "120"}),
    "link_header": ("/v1/tickets", "", "paginate: {type: link_header}", {"limit": "150"}),
    "none": ("/v1/orders", "results", "", {"paging": "none"}),
}


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_pagination_strategy_reads_every_record_once(api: Start, tmp_path: Path, strategy: str) -> None:
    base = api()
    endpoint, records, paginate, params = STRATEGIES[strategy]
    project = project_for(
        tmp_path,
        COMMON
        + f"""
base_url: {base}
endpoint: {endpoint}
records: "{records}"
params: {json.dumps(params)}
{paginate}
""",
    )
    summary = project.ingest()
    (source,) = summary.sources
    assert source.fetch is not None and source.fetch.records == RECORDS
    assert source.fetch.pages > (1 if strategy != "none" else 0)
    assert count(project, "select count(*) from silver.items") == RECORDS
    assert count(project, "select count(distinct id) from silver.items") == RECORDS
    assert count(project, "select max(id) from silver.items") == RECORDS


@pytest.mark.parametrize(
    "auth",
    [
        'auth: {type: basic, username: lagoa, password: "${env:API_TOKEN}"}',
        'auth: {type: api_key, name: X-API-Key, value: "${env:API_TOKEN}"}',
        'auth: {type: api_key, name: api_key, value: "${env:API_TOKEN}", location: query}',
        'auth: {type: oauth2, token_url: "{base}/oauth/token", client_id: lagoa, client_secret: "${env:API_TOKEN}"}',
    ],
)
def test_every_auth_kind_is_accepted_and_no_secret_is_kept(api: Start, tmp_path: Path, auth: str) -> None:
    base = api()
    source = (
        COMMON.replace(BEARER, auth.replace("{base}", base))
        + f"""
base_url: {base}
endpoint: /v1/orders
records: results
paginate: {{type: next_url}}
params: {{limit: "250"}}
"""
    )
    project = project_for(tmp_path, source)
    project.ingest()
    assert count(project, "select count(*) from silver.items") == RECORDS
    assert_no_secret(tmp_path)


def assert_no_secret(folder: Path, *texts: str) -> None:
    for text in texts:
        assert TOKEN not in text
    for path in folder.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"the token leaked into {path}"


INCREMENTAL = (
    COMMON.replace("{", "{{").replace("}", "}}")
    + """
base_url: {base}
endpoint: /v1/orders
records: results
paginate: {{type: next_url}}
params: {{since: "{{{{ watermark }}}}", limit: "50"}}
incremental: {{field: updated_at, initial: "2024-05-31T00:00:00+00:00", lookback: 1h}}
retries: {retries}
backoff: 0.01
{extra}
"""
)


def test_an_outage_mid_pagination_then_a_rerun_loses_and_duplicates_nothing(
    api: Start, tmp_path: Path
) -> None:
    base = api()
    project = project_for(tmp_path, INCREMENTAL.format(base=base, retries=1, extra=""))
    admin(base, "/_admin/outage?after=3&count=2", "POST")  # page 4 fails twice: beyond the retry
    with pytest.raises(SourceError) as failed:
        project.ingest()
    message = str(failed.value)
    assert "answered 500" in message and "page 4" in message and failed.value.transient
    assert project.lake.table("bronze.items") is None  # nothing committed, no watermark
    assert_no_secret(tmp_path, message)

    project = Project.load(tmp_path)
    project.ingest()
    assert count(project, "select count(*) from bronze.items") == RECORDS
    assert count(project, "select count(*) from silver.items") == RECORDS
    assert count(project, "select count(distinct id) from silver.items") == RECORDS


def test_429_with_retry_after_is_honoured(api: Start, tmp_path: Path) -> None:
    base = api("--throttle-every", "3")
    project = project_for(tmp_path, INCREMENTAL.format(base=base, retries=3, extra=""))
    summary = project.ingest()
    assert count(project, "select count(distinct id) from silver.items") == RECORDS
    fetched = summary.sources[0].fetch
    assert fetched is not None and fetched.retries >= 3
    served = admin(base, "/_admin/requests")
    assert isinstance(served, list)
    throttled = [i for i, r in enumerate(served) if r["status"] == 429]
    assert throttled
    for i in throttled:
        if i + 1 < len(served):  # the retry came after Retry-After: 1
            assert served[i + 1]["at"] - served[i]["at"] >= 0.95


def test_late_records_inside_the_lookback_are_merged_not_duplicated(api: Start, tmp_path: Path) -> None:
    base = api()
    project = project_for(tmp_path, INCREMENTAL.format(base=base, retries=1, extra=""))
    project.ingest()
    first = project.lake.latest(project.lake.table("bronze.items"), "lagoa.cursor")
    admin(base, "/_admin/late?api=orders&count=7&age=1800", "POST")  # 30 min late: inside the 1 h look-back
    again = Project.load(tmp_path)
    again.ingest()
    assert count(again, "select count(*) from silver.items") == RECORDS + 7
    assert count(again, "select count(distinct id) from silver.items") == RECORDS + 7
    # The look-back re-read the last hour: bronze holds those rows twice, silver once.
    assert count(again, "select count(*) from bronze.items") > RECORDS + 7
    assert again.lake.latest(again.lake.table("bronze.items"), "lagoa.cursor") == first


def test_a_killed_run_does_not_advance_the_watermark(api: Start, tmp_path: Path) -> None:
    base = api()
    project_for(tmp_path, INCREMENTAL.format(base=base, retries=1, extra="rate_limit: 4"))
    ingest = subprocess.Popen(
        [sys.executable, "-m", "lagoa.cli", "ingest", "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # killed part-way through its 10 pages
        served = admin(base, "/_admin/requests")
        if isinstance(served, list) and len(served) >= 3:
            break
        time.sleep(0.05)
    ingest.send_signal(signal.SIGKILL)
    ingest.wait()
    project = Project.load(tmp_path)
    table = project.lake.table("bronze.items")
    assert table is None or project.lake.latest(table, "lagoa.cursor") is None

    project.ingest()
    assert count(project, "select count(*) from bronze.items") == RECORDS  # from the start, once
    assert count(project, "select count(distinct id) from silver.items") == RECORDS


def test_client_errors_are_terminal_and_name_the_source_url_and_status(
    api: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = api()
    monkeypatch.setenv("API_TOKEN", "wrong-" + TOKEN)
    project = project_for(
        tmp_path,
        COMMON.replace(
            BEARER, 'auth: {type: api_key, name: api_key, value: "${env:API_TOKEN}", location: query}'
        )
        + f"base_url: {base}\nendpoint: /v1/orders\nrecords: results\n",
    )
    with pytest.raises(SourceError) as failed:
        project.ingest()
    message = str(failed.value)
    assert (
        message.startswith("source `items`: GET ") and "answered 401" in message and "unauthorised" in message
    )
    assert "api_key=%2A%2A%2A" in message or "api_key=***" in message
    assert "wrong-" not in message and not failed.value.transient

    monkeypatch.setenv("API_TOKEN", TOKEN)
    project = project_for(tmp_path, COMMON + f"base_url: {base}\nendpoint: /v1/orders\nrecords: orders\n")
    with pytest.raises(SourceError, match=r"page 1 \(.*\) has no list of records at `orders`"):
        project.ingest()


def test_the_medallion_example_runs_its_hourly_and_daily_pipelines_into_gold(
    api: Start, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lagoa.orchestrate.graph import project_graph
    from tests.conftest import copy_example

    base = api("--throttle-every", "40", "--duplicates")
    folder = copy_example("medallion_apis", tmp_path / "medallion")
    config = folder / "lagoa.yml"
    config.write_text(config.read_text().replace("http://127.0.0.1:8765", base))
    monkeypatch.setenv("MEDALLION_API_TOKEN", TOKEN)
    monkeypatch.setenv("MEDALLION_API_URL", base)  # a base URL from the environment is resolved too
    config.write_text(
        config.read_text().replace(
            f"base_url: {base}\n    endpoint: /v1/rates",
            "base_url: ${env:MEDALLION_API_URL}\n    endpoint: /v1/rates",
        )
    )
    assert "${env:MEDALLION_API_URL}" in config.read_text()
    project = Project.load(folder)
    hourly = project.run(["hourly"])
    daily = project.run(["daily"])
    assert hourly.succeeded and daily.succeeded, (hourly.outcomes, daily.outcomes)
    graph = project_graph(project.workspace, project.config.pipeline("hourly").domains)
    assert {t.domain for t in graph.tasks.values()} == {"weather", "marketplace"}
    for table in ("orders", "observations", "rates", "tickets"):
        assert count(project, f"select count(distinct id) from silver.{table}") == RECORDS
        assert count(project, f"select count(*) from silver.{table}") == RECORDS  # duplicates merged
    assert count(project, "select sum(orders) from gold.fct_hourly_orders") == RECORDS
    assert count(project, "select sum(tickets) from gold.fct_daily_tickets") == RECORDS
    assert count(project, "select sum(quotes) from gold.fct_daily_fx") == RECORDS
    assert count(project, "select sum(observations) from gold.fct_station_daily") == RECORDS
    assert_no_secret(folder)


def test_sources_fetch_concurrently_within_the_limit(api: Start, tmp_path: Path) -> None:
    base = api()
    endpoints = {
        "rates": ("/v1/rates", "data"),
        "orders": ("/v1/orders", "results"),
        "tickets": ("/v1/tickets", ""),
    }
    config = "name: apis\norchestration: {max_fetches: 2}\nsources:\n"
    for name, (endpoint, records) in endpoints.items():
        source = (
            COMMON
            + f"""
base_url: {base}
endpoint: {endpoint}
records: "{records}"
params: {{paging: offset, limit: "100"}}
paginate: {{type: offset, size_param: limit, size: 100}}
rate_limit: 8
"""
        )
        config += f"  {name}:\n" + textwrap.indent(textwrap.dedent(source), "    ")
    (tmp_path / "lagoa.yml").write_text(config)
    project = Project.load(tmp_path)
    project.ingest()
    for name in endpoints:
        assert count(project, f"select count(distinct id) from silver.{name}") == RECORDS
    served = admin(base, "/_admin/requests")
    assert isinstance(served, list)
    spans = {
        path: (
            min(r["at"] for r in served if r["path"] == path),
            max(r["at"] for r in served if r["path"] == path),
        )
        for path in {r["path"] for r in served}
    }
    moments = sorted(t for first, last in spans.values() for t in (first, last))
    overlap = max(sum(first <= t <= last for first, last in spans.values()) for t in moments)
    assert overlap == 2  # two sources fetched at once, never three
    assert not list((tmp_path / ".lagoa" / "fetch").rglob("*.jsonl"))  # staging files cleaned up
