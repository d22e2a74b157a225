"""The JSON API of ``lagoa serve``, over a real process serving a project with real runs: every
endpoint's answer compared with the project's own state, the token, session and CSRF checks, the
read-only console's refusals, identifier validation, and no secret in any answer."""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
import yaml

from lagoa.orchestrate.project import Project
from tests.serve_project import ServedProject, build_project, server

TOKEN = "serve-t0ken-5ecret"
HOOK_TOKEN = "h00k-s3cret-9f2e71"
"""Used by the project's notification (``${env:HOOK_TOKEN}``): no answer may hold it."""
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """An HTTP/1.1 client of one server that follows no redirect and records every answer."""

    base: str
    headers: dict[str, str] = field(default_factory=dict)
    seen: list[bytes] = field(default_factory=list)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        parts = urlsplit(self.base)
        sent = {**self.headers, **(headers or {})}
        body: bytes | None = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        elif form is not None:
            body = urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        target = path + (f"?{urlencode(params)}" if params else "")
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        try:
            connection.request(method, target, body=body, headers=sent)
            response = connection.getresponse()
            reply = Reply(response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        self.seen.append(reply.body)
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Reply:
        return self.request("POST", path, **kwargs)


@dataclass(frozen=True)
class Served:
    built: ServedProject
    project: Project
    client: Client
    csrf: str
    hooks: list[dict[str, str]]
    """The headers of every notification the project's webhook received."""


class Hook(BaseHTTPRequestHandler):
    """The project's webhook: it records each notification and answers 500 quoting the request's
    Authorization header back, as a careless API would, so the secret reaches Lagoa's errors."""

    received: list[dict[str, str]]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(dict(self.headers.items()))
        body = f"unauthorised: {self.headers.get('Authorization')}".encode()
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def webhook() -> Iterator[tuple[str, list[dict[str, str]]]]:
    received: list[dict[str, str]] = []
    handler = type("RecordingHook", (Hook,), {"received": received})
    listener = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=listener.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.server_address[1]}/hook", received
    finally:
        listener.shutdown()
        listener.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    built = build_project(tmp_path_factory.mktemp("serve") / "project")
    with webhook() as (hook_url, hooks), pytest.MonkeyPatch.context() as patch:
        config = yaml.safe_load((built.root / "lagoa.yml").read_text())
        config["notifications"] = [
            {
                "kind": "webhook",
                "url": hook_url,
                "headers": {"Authorization": "Bearer ${env:HOOK_TOKEN}"},
                "events": ["failure", "retry", "success"],
            }
        ]
        (built.root / "lagoa.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        patch.setenv("HOOK_TOKEN", HOOK_TOKEN)
        project = Project.load(built.root)
        try:
            with server(built.root, env={"HOOK_TOKEN": HOOK_TOKEN}) as url:
                client = Client(url)
                page = client.get("/")
                assert page.status == 200, page.text
                found = CSRF_META.search(page.text)
                assert found is not None, "the page has no csrf-token meta"
                yield Served(built, project, client, found[1], hooks)
        finally:
            project.close()


@pytest.fixture(scope="module")
def secured(served: Served) -> Iterator[Client]:
    """The same project served with ``--token``."""
    with server(served.built.root, "--token", TOKEN, env={"HOOK_TOKEN": HOOK_TOKEN}) as url:
        yield Client(url)


def ok(reply: Reply, status: int = 200) -> Any:
    assert reply.status == status, f"{reply.status}: {reply.body[:2000]!r}"
    return reply.json()


def query(served: Served, sql: str, **more: Any) -> Reply:
    return served.client.post(
        "/api/query", json_body={"sql": sql, **more}, headers={"X-CSRF-Token": served.csrf}
    )


def retryable(project: Project, run_id: str) -> list[str]:
    """The tasks ``lagoa run retry`` would run again, from the state."""
    record = project.state.run(run_id)
    assert record is not None
    succeeded = {a.task for a in record.attempts if a.state == "succeeded"}
    again = {a.task for a in record.attempts if a.state in ("failed", "skipped", "cancelled", "timed_out")}
    return sorted(again - succeeded)


def count(project: Project, sql: str) -> int:
    _, rows = project.query(sql)
    return int(rows[0][0])


# --- overview and runs ------------------------------------------------------------------------


def test_overview(served: Served) -> None:
    body = ok(served.client.get("/api/overview"))
    status = served.project.status()
    pipelines = {p["name"]: p for p in body["status"]["pipelines"]}
    assert sorted(pipelines) == sorted(p.name for p in status.pipelines)
    assert pipelines["sensor_feed"]["last_run"]["state"] == "failed"
    assert pipelines["daily"]["last_run"]["run_id"] == served.built.daily_run
    ended = [r for r in served.project.state.runs(limit=200) if r.ended_at is not None]
    assert [d["run_id"] for d in body["durations"]] == [r.run_id for r in reversed(ended)]
    assert body["landed"], "rows landed per day are missing"
    assert {row["pipeline"] for row in body["landed"]} <= {"daily", "sensor_feed"}


def test_runs_list(served: Served) -> None:
    state = served.project.state
    body = ok(served.client.get("/api/runs"))
    assert [r["run_id"] for r in body["runs"]] == [r.run_id for r in state.runs()]
    assert [r["state"] for r in body["runs"]] == [r.state for r in state.runs()]
    assert body["total"] == state.count_runs() == len(body["runs"])
    assert body["pipelines"] == ["daily", "sensor_feed"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"pipeline": "daily"}, {"pipeline": "daily"}),
        ({"pipeline": "sensor_feed"}, {"pipeline": "sensor_feed"}),
        ({"pipeline": "nowhere"}, {"pipeline": "nowhere"}),
        ({"state": "failed"}, {"state": "failed"}),
        ({"state": "succeeded"}, {"state": "succeeded"}),
        ({"since": "2024-06-02T00:00:00+00:00"}, {"since": datetime(2024, 6, 2, tzinfo=UTC)}),
        ({"until": "2024-06-01T12:00:00+00:00"}, {"until": datetime(2024, 6, 1, 12, tzinfo=UTC)}),
        (
            {"since": "2024-06-02T00:00:00+00:00", "until": "2024-06-03T00:00:00+00:00"},
            {"since": datetime(2024, 6, 2, tzinfo=UTC), "until": datetime(2024, 6, 3, tzinfo=UTC)},
        ),
        ({"since": "2025-01-01T00:00:00+00:00"}, {"since": datetime(2025, 1, 1, tzinfo=UTC)}),
    ],
)
def test_runs_filters(served: Served, params: dict[str, str], expected: dict[str, Any]) -> None:
    body = ok(served.client.get("/api/runs", params=params))
    records = served.project.state.runs(**expected)
    assert [r["run_id"] for r in body["runs"]] == [r.run_id for r in records]
    assert body["total"] == served.project.state.count_runs(**expected) == len(records)


def test_runs_filters_pick_the_runs(served: Served) -> None:
    """Independently of the store's own filtering: the sensor run covers 2024-06-01 only."""
    daily, failed = served.built.daily_run, served.built.failed_run
    since = ok(served.client.get("/api/runs", params={"since": "2024-06-02T00:00:00+00:00"}))
    assert [r["run_id"] for r in since["runs"]] == [daily]
    only = ok(served.client.get("/api/runs", params={"pipeline": "sensor_feed", "state": "failed"}))
    assert [r["run_id"] for r in only["runs"]] == [failed]


def test_runs_paging(served: Served) -> None:
    everything = [r.run_id for r in served.project.state.runs()]
    assert len(everything) >= 2
    first = ok(served.client.get("/api/runs", params={"limit": 1}))
    second = ok(served.client.get("/api/runs", params={"limit": 1, "offset": 1}))
    beyond = ok(served.client.get("/api/runs", params={"limit": 1, "offset": len(everything)}))
    assert [r["run_id"] for r in first["runs"] + second["runs"]] == everything[:2]
    assert beyond["runs"] == []
    assert first["total"] == second["total"] == beyond["total"] == len(everything)
    assert (first["limit"], second["offset"]) == (1, 1)


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 501}, {"offset": -1}, {"state": "exploded"}, {"since": "soon"}]
)
def test_runs_bad_filters(served: Served, params: dict[str, Any]) -> None:
    reply = served.client.get("/api/runs", params=params)
    assert reply.status == 422
    assert reply.json()["detail"][0]["loc"][0] == "query"


def test_run_detail(served: Served) -> None:
    for run_id in (served.built.daily_run, served.built.failed_run):
        record = served.project.state.run(run_id)
        assert record is not None
        body = ok(served.client.get(f"/api/runs/{run_id}"))
        assert (body["run_id"], body["pipeline"], body["state"]) == (run_id, record.pipeline, record.state)
        assert [(a["task"], a["attempt"], a["state"]) for a in body["attempts"]] == [
            (a.task, a.attempt, a.state) for a in record.attempts
        ]
    daily = ok(served.client.get(f"/api/runs/{served.built.daily_run}"))
    transform = [a for a in daily["attempts"] if a["task"].startswith("transform_")]
    assert transform and any(node["name"] for a in transform for node in a["dbt"])
    assert daily["retryable"] == []
    failed = ok(served.client.get(f"/api/runs/{served.built.failed_run}"))
    assert failed["retryable"] == retryable(served.project, served.built.failed_run)
    assert "ingest_sensors" in failed["retryable"]
    assert "sensor API is unreachable" in failed["error"]


def test_run_unknown(served: Served) -> None:
    reply = served.client.get("/api/runs/run-20000101T000000Z-000000")
    assert reply.status == 404
    assert "no run" in reply.json()["detail"]


def test_attempt_log(served: Served) -> None:
    record = served.project.state.run(served.built.failed_run)
    assert record is not None
    attempt = next(a for a in record.attempts if a.task == "ingest_sensors")
    body = ok(
        served.client.get(
            f"/api/runs/{served.built.failed_run}/attempts/ingest_sensors/{attempt.attempt}/log"
        )
    )
    assert body["log"] == (attempt.log or "") and body["log"]
    assert (body["state"], body["running"]) == ("failed", False)
    missing = served.client.get(f"/api/runs/{served.built.failed_run}/attempts/ingest_sensors/99/log")
    assert missing.status == 404
    nobody = served.client.get(f"/api/runs/{served.built.failed_run}/attempts/no_such_task/1/log")
    assert nobody.status == 404


def test_retry_nothing_to_retry_and_unknown(served: Served) -> None:
    headers = {"X-CSRF-Token": served.csrf}
    done = served.client.post(f"/api/runs/{served.built.daily_run}/retry", headers=headers)
    assert done.status == 409
    assert "no failed, skipped or cancelled task" in done.json()["detail"]
    unknown = served.client.post("/api/runs/run-20000101T000000Z-000000/retry", headers=headers)
    assert unknown.status == 404


# --- tables -----------------------------------------------------------------------------------


def test_tables(served: Served) -> None:
    body = ok(served.client.get("/api/tables"))
    listed = {t["identifier"]: t for t in body["tables"]}
    expected = {t.identifier: t for t in served.project.tables()}
    assert sorted(listed) == sorted(expected)
    for identifier, info in expected.items():
        assert (listed[identifier]["rows"], listed[identifier]["files"]) == (info.rows, info.files), (
            identifier
        )
        assert listed[identifier]["snapshots"] == info.snapshots
    assert listed["silver.erp_orders"]["quarantine"] is True
    assert listed["silver.erp_orders"]["rows"] == count(
        served.project, "SELECT count(*) FROM silver.erp_orders"
    )
    assert listed["silver.erp_orders"]["last_run"] == served.built.daily_run


def test_table_detail(served: Served) -> None:
    table = served.project.lake.table("silver.erp_orders")
    assert table is not None
    body = ok(served.client.get("/api/tables/silver.erp_orders"))
    assert [f["name"] for f in body["schema"]] == [f.name for f in table.schema().fields]
    assert [s["snapshot_id"] for s in body["snapshots"]] == [
        s.snapshot_id for s in sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
    ]
    assert [p["source"] for p in body["partition_spec"]] == ["order_ts"]
    assert body["metadata_location"] == table.metadata_location


def test_table_files(served: Served) -> None:
    info = next(t for t in served.project.tables() if t.identifier == "silver.erp_orders")
    body = ok(served.client.get("/api/tables/silver.erp_orders/files"))
    assert body["count"] == info.files == len(body["files"])
    assert sum(f["rows"] for f in body["files"]) == info.rows
    assert [f["bytes"] for f in body["files"]] == sorted((f["bytes"] for f in body["files"]), reverse=True)
    one = ok(served.client.get("/api/tables/silver.erp_orders/files", params={"limit": 1}))
    assert (one["count"], len(one["files"])) == (info.files, 1)


def test_table_preview(served: Served) -> None:
    body = ok(served.client.get("/api/tables/silver.products/preview", params={"limit": 3}))
    assert len(body["rows"]) == 3
    columns, rows = served.project.query("SELECT product_id FROM silver.products")
    assert columns == ["product_id"]
    assert {row[body["columns"].index("product_id")] for row in body["rows"]} <= {r[0] for r in rows}
    table = served.project.lake.table("silver.products")
    assert table is not None
    assert body["columns"] == [f.name for f in table.schema().fields]


def test_table_quarantine(served: Served) -> None:
    quarantined = "silver.erp_orders__quarantine"
    body = ok(served.client.get("/api/tables/silver.erp_orders/quarantine", params={"limit": 500}))
    total = count(served.project, f"SELECT count(*) FROM {quarantined}")
    assert body["total"] == total == len(body["rows"]) and total > 0
    assert sum(r["rows"] for r in body["reasons"]) == total
    _, by_reason = served.project.query(f"SELECT _lagoa_reason, count(*) FROM {quarantined} GROUP BY 1")
    assert {r["reason"]: r["rows"] for r in body["reasons"]} == {r: int(n) for r, n in by_reason}
    reason = body["reasons"][0]["reason"]
    one = ok(served.client.get("/api/tables/silver.erp_orders/quarantine", params={"reason": reason}))
    assert one["reason"] == reason and one["total"] == body["reasons"][0]["rows"]
    at = one["columns"].index("_lagoa_reason")
    assert {row[at] for row in one["rows"]} == {reason}
    quoted = ok(
        served.client.get("/api/tables/silver.erp_orders/quarantine", params={"reason": "x' OR '1'='1"})
    )
    assert (quoted["total"], quoted["rows"]) == (0, [])
    clean = ok(served.client.get("/api/tables/bronze.products/quarantine"))
    assert (clean["total"], clean["reasons"]) == (0, [])


@pytest.mark.parametrize("suffix", ["", "/files", "/preview", "/quarantine"])
def test_table_unknown(served: Served, suffix: str) -> None:
    reply = served.client.get(f"/api/tables/silver.nothing{suffix}")
    assert reply.status == 404
    assert reply.json()["detail"] == "no table silver.nothing"


# --- quality and lineage ----------------------------------------------------------------------


def test_quality_latest_and_by_run(served: Served) -> None:
    run_id, validations = served.project.quality_results()
    body = ok(served.client.get("/api/quality"))
    assert body["run_id"] == run_id == served.built.daily_run
    assert sorted((v["table"], v["suite"], v["success"]) for v in body["validations"]) == sorted(
        (v.table, v.suite, v.success) for v in validations
    )
    erp = next(v for v in body["validations"] if v["table"] == "silver.erp_orders")
    assert erp["failed"] == sum(1 for e in erp["expectations"] if not e["success"]) > 0
    chosen = ok(served.client.get("/api/quality", params={"run_id": served.built.daily_run}))
    assert chosen["validations"] == body["validations"]
    assert served.built.daily_run in chosen["runs"]
    none = ok(served.client.get("/api/quality", params={"run_id": served.built.failed_run}))
    assert (none["run_id"], none["validations"]) == (served.built.failed_run, [])


def test_quality_table_history(served: Served) -> None:
    body = ok(served.client.get("/api/quality/tables/silver.erp_orders"))
    _, validations = served.project.quality_results(served.built.daily_run)
    expected = [v for v in validations if v.table == "silver.erp_orders"]
    assert [(h["run_id"], h["rows"]) for h in body["history"]] == [(v.run_id, v.rows) for v in expected]
    assert served.client.get("/api/quality/tables/silver.nothing").status == 404


def test_lineage_whole(served: Served) -> None:
    body = ok(served.client.get("/api/lineage"))
    ids = {n["id"] for n in body["nodes"]}
    for name in served.project.config.sources:
        assert f"source:{name}" in ids
    for info in served.project.tables():
        if not info.identifier.endswith("__quarantine"):
            assert info.identifier in ids
    edges = {(e["from"], e["to"]) for e in body["edges"]}
    assert ("bronze.erp_orders", "silver.erp_orders") in edges
    assert ("model:fct_daily_store_metrics", "gold.fct_daily_store_metrics") in edges
    assert all(e["path"].startswith("M") for e in body["edges"])


def test_lineage_focus(served: Served) -> None:
    body = ok(served.client.get("/api/lineage", params={"focus": "silver.erp_orders", "up": 1, "down": 0}))
    assert body["focus"] == "silver.erp_orders"
    assert sorted(n["id"] for n in body["nodes"]) == ["bronze.erp_orders", "silver.erp_orders"]
    wide = ok(served.client.get("/api/lineage", params={"focus": "silver.erp_orders", "up": 2, "down": 1}))
    assert {"source:erp_orders", "bronze.erp_orders", "silver.erp_orders"} <= {n["id"] for n in wide["nodes"]}
    assert len(wide["nodes"]) > 3  # a staging model reads silver.erp_orders
    missing = served.client.get("/api/lineage", params={"focus": "silver.nothing"})
    assert missing.status == 404
    assert "no node" in missing.json()["detail"]


def test_column_lineage(served: Served) -> None:
    from lagoa.orchestrate.observe.lineage import kept_events, lineage_of

    events = kept_events(served.project.workspace)
    body = ok(served.client.get("/api/lineage/columns/silver.erp_orders"))
    assert body["table"] == "silver.erp_orders"
    assert body["events"] == len(events)
    expected = lineage_of(events, "silver.erp_orders", upstream=True)
    assert sorted(body["columns"]) == sorted(expected.columns)
    assert served.client.get("/api/lineage/columns/silver.nothing").status == 404


# --- the console ------------------------------------------------------------------------------


def test_query_results_and_paging(served: Served) -> None:
    total = count(served.project, "SELECT count(*) FROM silver.products")
    sql = "SELECT product_id FROM silver.products ORDER BY product_id"
    _, expected = served.project.query(sql)
    first = ok(query(served, sql, page_size=200))
    assert (first["columns"], first["page"], first["page_size"]) == (["product_id"], 0, 200)
    assert first["more"] is (total > 200)
    pages = [first]
    while pages[-1]["more"]:
        pages.append(ok(query(served, sql, page=len(pages), page_size=200)))
    assert [row[0] for p in pages for row in p["rows"]] == [row[0] for row in expected]
    assert pages[-1]["more"] is False
    exact = ok(query(served, sql, page_size=total))
    assert (len(exact["rows"]), exact["more"]) == (total, False)
    beyond = ok(query(served, sql, page=10_000, page_size=10))
    assert (beyond["rows"], beyond["more"]) == ([], False)


def test_the_console_sees_the_tables_a_statement_names_and_all_of_them_in_the_catalog(
    served: Served,
) -> None:
    """Views are made for the tables a statement names; a look at the catalog sees them all."""
    joined = "SELECT (SELECT count(*) FROM Silver.ERP_ORDERS) + (SELECT count(*) FROM silver.products)"
    assert ok(query(served, joined))["rows"] == [list(served.project.query(joined)[1][0])]
    lake = {t for t in served.project.lake.identifiers() if not t.startswith("gold.")}
    for listing in (
        "SELECT table_schema || '.' || table_name FROM information_schema.tables",
        "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal",
    ):
        listed = {row[0] for row in ok(query(served, listing, page_size=1000))["rows"]}
        assert lake <= listed, sorted(lake - listed)
    absent = query(served, "SELECT * FROM silver.no_such_table")
    assert absent.status == 400 and "no_such_table" in absent.text


def test_query_csv(served: Served) -> None:
    sql = "SELECT store_id, count(*) AS orders FROM silver.erp_orders GROUP BY 1 ORDER BY 1"
    _, expected = served.project.query(sql)
    reply = served.client.post(
        "/api/query.csv", json_body={"sql": sql}, headers={"X-CSRF-Token": served.csrf}
    )
    assert reply.status == 200, reply.text
    assert (reply.header("content-type") or "").startswith("text/csv")
    assert "attachment" in (reply.header("content-disposition") or "")
    rows = list(csv.reader(io.StringIO(reply.text)))
    assert rows[0] == ["store_id", "orders"]
    assert [(int(a), int(b)) for a, b in rows[1:]] == [(int(a), int(b)) for a, b in expected]
    form = served.client.post(
        "/api/query.csv", form={"sql": "SELECT 1 AS one"}, headers={"X-CSRF-Token": served.csrf}
    )
    assert (form.status, form.text.split()) == (200, ["one", "1"])
    refused = served.client.post(
        "/api/query.csv",
        json_body={"sql": "DROP TABLE silver.products"},
        headers={"X-CSRF-Token": served.csrf},
    )
    assert refused.status == 400 and refused.json()["refused"] is True


REFUSED = [
    ("COPY (SELECT 1) TO '/tmp/lagoa-copied.csv'", "COPY"),
    ("ATTACH '/tmp/lagoa-other.duckdb' AS other", "ATTACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("SET enable_external_access = true", "SET"),
    ("RESET lock_configuration", "SET"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("PRAGMA version", "PRAGMA"),
    ("PRAGMA threads = 1", "PRAGMA"),
    ("CREATE TABLE copied AS SELECT 1 AS one", "CREATE"),
    ("CREATE MACRO m() AS 1", "CREATE"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')", "CREATE"),
    ("DROP VIEW silver.products", "DROP"),
    ("INSERT INTO silver.products (product_id) VALUES (1)", "INSERT"),
    ("UPDATE silver.products SET name = 'x'", "UPDATE"),
    ("DELETE FROM silver.products", "DELETE"),
    ("SELECT 1; SELECT 2", "one statement at a time"),
    ("SELECT * FROM read_csv('/etc/passwd')", "outside the lake"),
    ("SELECT * FROM read_text('/etc/hostname')", "outside the lake"),
    ("SELECT * FROM glob('/etc/*')", "outside the lake"),
    ("SELECT * FROM '/etc/passwd'", "reads a file by its path"),
    ("SELECT * FROM 'products.csv'", "reads a file by its path"),
    ("SELECT * FROM read_csv('http://127.0.0.1:9/x.csv')", "outside the lake"),
    ("SELECT * FROM 'http://127.0.0.1:9/x.csv'", "reads a file by its path"),
    ("SELECT * FROM duckdb_secrets()", "secrets"),
    ("SELECT * FROM query('SELECT 1')", "runs SQL given as a string"),
    ("SELECT getenv('HOOK_TOKEN')", "environment"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED, ids=[sql for sql, _ in REFUSED])
def test_console_refuses(served: Served, sql: str, reason: str) -> None:
    reply = query(served, sql)
    assert reply.status == 400, reply.text
    body = reply.json()
    assert body["refused"] is True, body
    assert body["detail"].startswith("refused: ")
    assert reason in body["detail"], body["detail"]


def test_console_wrote_nothing_and_still_reads(served: Served) -> None:
    """After every refusal (run before this test): no file written, the lake and dbt's models read."""
    for sql, _ in REFUSED:
        query(served, sql)
    assert not Path("/tmp/lagoa-copied.csv").exists() and not Path("/tmp/lagoa-other.duckdb").exists()
    assert served.project.lake.table("silver.products") is not None
    for table in ("silver.products", "main.fct_daily_store_metrics", "gold.fct_daily_store_metrics"):
        body = ok(query(served, f"SELECT count(*) AS n FROM {table}"))
        assert body["rows"] == [[count(served.project, f"SELECT count(*) FROM {table}")]], table
        assert body["rows"][0][0] > 0
    shown = ok(query(served, "SHOW TABLES"))
    assert ["fct_daily_store_metrics"] in shown["rows"]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", "syntax error"),
        ("SELECT * FROM silver.nothing", "nothing does not exist"),
        ("SELECT nothing FROM silver.products", "nothing"),
        ("   ", "nothing to run"),
    ],
)
def test_console_query_errors(served: Served, sql: str, message: str) -> None:
    reply = query(served, sql)
    assert reply.status == 400, reply.text
    body = reply.json()
    assert body["refused"] is False
    assert message in body["detail"]


# --- docs ---------------------------------------------------------------------------------------


def test_docs(served: Served) -> None:
    body = ok(served.client.get("/api/docs"))
    assert body == {"published": True, "url": "/docs-site/index.html"}
    site = served.client.get(body["url"])
    assert site.status == 200
    assert (site.header("content-type") or "").startswith("text/html")
    assert "dbt" in site.text.lower()
    assert "unsafe-inline" in (site.header("content-security-policy") or "")


def test_openapi_lists_every_endpoint(served: Served) -> None:
    paths = ok(served.client.get("/api/openapi.json"))["paths"]
    assert {
        "/api/overview",
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/attempts/{task}/{attempt}/log",
        "/api/runs/{run_id}/retry",
        "/api/tables",
        "/api/tables/{identifier}",
        "/api/tables/{identifier}/files",
        "/api/tables/{identifier}/preview",
        "/api/tables/{identifier}/quarantine",
        "/api/quality",
        "/api/quality/tables/{identifier}",
        "/api/lineage",
        "/api/lineage/columns/{identifier}",
        "/api/query",
        "/api/query.csv",
        "/api/docs",
    } == set(paths)


# --- identifiers --------------------------------------------------------------------------------

BAD_IDENTIFIERS = [
    "..",
    "silver..products",
    "silver.products'",
    'silver."products"',
    "silver.products\n",
    "silver",
]


@pytest.mark.parametrize("identifier", BAD_IDENTIFIERS)
@pytest.mark.parametrize(
    "template",
    [
        "/api/tables/{}",
        "/api/tables/{}/files",
        "/api/tables/{}/preview",
        "/api/tables/{}/quarantine",
        "/api/quality/tables/{}",
        "/api/lineage/columns/{}",
    ],
)
def test_bad_table_identifiers(served: Served, template: str, identifier: str) -> None:
    reply = served.client.get(template.format(quote(identifier, safe="")))
    assert reply.status == 404, reply.text
    # Refused by the form check (or no route matched): not a catalog's or a storage's error.
    assert reply.json()["detail"] in (
        "Not Found",
        f"no table {identifier!r}: tables are named namespace.table",
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/..",
        "/api/runs/a..b",
        "/api/runs/..%2F..%2Fetc%2Fpasswd",
        "/api/runs/run%27%20OR%201%3D1",
        "/api/runs/run-x%0A",
        "/api/runs/a..b/attempts/ingest_sensors/1/log",
        "/api/runs/{failed}/attempts/..%2F..%2Fetc/1/log",
        "/api/runs/{failed}/attempts/../1/log",
        "/api/runs/{failed}/attempts/%2E%2E/1/log",
        "/api/tables/silver%2Fproducts",
        "/api/tables/..%2F..%2Fetc%2Fpasswd/files",
    ],
)
def test_bad_path_identifiers(served: Served, path: str) -> None:
    reply = served.client.get(path.format(failed=served.built.failed_run))
    assert reply.status == 404, reply.text
    detail = reply.json()["detail"]
    assert detail == "Not Found" or detail.startswith(("no run ", "no task ", "no table ")), detail
    retry = served.client.post(
        path.format(failed=served.built.failed_run) + "/retry", headers={"X-CSRF-Token": served.csrf}
    )
    assert retry.status in (404, 405)
    bad_run = served.client.get("/api/quality", params={"run_id": "a..b"})
    assert bad_run.status == 404


# --- CSRF and host --------------------------------------------------------------------------------


def test_csrf_required(served: Served) -> None:
    plain = served.client.post("/api/query", json_body={"sql": "SELECT 1"})
    assert plain.status == 403 and "CSRF" in plain.json()["detail"]
    wrong = served.client.post("/api/query", json_body={"sql": "SELECT 1"}, headers={"X-CSRF-Token": "nope"})
    assert wrong.status == 403
    odd = served.client.post(
        "/api/query", json_body={"sql": "SELECT 1"}, headers={"X-CSRF-Token": "\xe9t\xe9"}
    )
    assert odd.status == 403
    retry = served.client.post(f"/api/runs/{served.built.failed_run}/retry")
    assert retry.status == 403
    csv_export = served.client.post("/api/query.csv", json_body={"sql": "SELECT 1"})
    assert csv_export.status == 403
    assert ok(query(served, "SELECT 41 + 1 AS answer"))["rows"] == [[42]]


def test_foreign_origin_refused(served: Served) -> None:
    reply = served.client.post(
        "/api/query",
        json_body={"sql": "SELECT 1"},
        headers={"X-CSRF-Token": served.csrf, "Origin": "http://evil.example"},
    )
    assert reply.status == 403 and "cross-site" in reply.json()["detail"]
    own = urlsplit(served.client.base).netloc
    same = served.client.post(
        "/api/query",
        json_body={"sql": "SELECT 1"},
        headers={"X-CSRF-Token": served.csrf, "Origin": f"http://{own}"},
    )
    assert same.status == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "[2001:db8::1]:80"]
)
def test_foreign_host_refused(served: Served, host: str) -> None:
    for path in ("/api/overview", "/", "/api/openapi.json"):
        reply = served.client.get(path, headers={"Host": host})
        assert reply.status == 421, (path, reply.status)
    assert served.client.get("/api/overview", headers={"Host": "localhost"}).status == 200


# --- the token ------------------------------------------------------------------------------------

API_GETS = [
    "/api/overview",
    "/api/runs",
    "/api/runs/{daily}",
    "/api/runs/{failed}/attempts/ingest_sensors/1/log",
    "/api/tables",
    "/api/tables/silver.products",
    "/api/tables/silver.products/files",
    "/api/tables/silver.products/preview",
    "/api/tables/silver.erp_orders/quarantine",
    "/api/quality",
    "/api/quality/tables/silver.erp_orders",
    "/api/lineage",
    "/api/lineage/columns/silver.erp_orders",
    "/api/docs",
    "/api/openapi.json",
]


def test_token_required(served: Served, secured: Client) -> None:
    names = {"daily": served.built.daily_run, "failed": served.built.failed_run}
    for path in API_GETS:
        reply = secured.get(path.format(**names))
        assert reply.status == 401, path
        assert reply.header("www-authenticate") == "Bearer"
    for path in ("/api/query", "/api/query.csv", f"/api/runs/{served.built.failed_run}/retry"):
        assert secured.post(path, json_body={"sql": "SELECT 1"}).status == 401, path
    for headers in ({"Authorization": "Bearer wrong"}, {"X-Lagoa-Token": "wrong"}, {"Authorization": TOKEN}):
        assert secured.get("/api/overview", headers=headers).status == 401, headers
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {"X-Lagoa-Token": TOKEN}):
        for path in API_GETS:
            assert secured.get(path.format(**names), headers=headers).status == 200, (path, headers)
        # The access token is proof enough for a POST: no CSRF token needed.
        body = ok(secured.post("/api/query", json_body={"sql": "SELECT 7 AS n"}, headers=headers))
        assert body["rows"] == [[7]]


def test_pages_redirect_to_login(served: Served, secured: Client) -> None:
    for path in ("/", "/runs", "/tables/silver.products", "/docs-site/index.html"):
        reply = secured.get(path)
        assert reply.status == 303, path
        assert reply.header("location") == f"/login?next={quote(path)}"
    assert secured.get("/login").status == 200


def test_login_session(served: Served, secured: Client) -> None:
    wrong = secured.post("/login", form={"token": "wrong", "next": "/runs"})
    assert wrong.status == 401 and secured.post("/login", form={"token": "", "next": "/"}).status == 401
    assert wrong.header("set-cookie") is None
    reply = secured.post("/login", form={"token": TOKEN, "next": "/runs"})
    assert reply.status == 303 and reply.header("location") == "/runs"
    cookie = reply.header("set-cookie")
    assert cookie is not None and cookie.startswith("lagoa_session=")
    value = cookie.split(";", 1)[0].removeprefix("lagoa_session=")
    assert value and TOKEN not in value and quote(TOKEN) not in value
    assert "httponly" in cookie.lower()
    headers = {"Cookie": f"lagoa_session={value}"}
    assert ok(secured.get("/api/overview", headers=headers))["status"]["project"] == "retail_lakehouse"
    page = secured.get("/runs", headers=headers)
    assert page.status == 200
    found = CSRF_META.search(page.text)
    assert found is not None
    # With the session cookie alone a POST still needs the CSRF token.
    assert secured.post("/api/query", json_body={"sql": "SELECT 1"}, headers=headers).status == 403
    posted = secured.post(
        "/api/query", json_body={"sql": "SELECT 1 AS n"}, headers={**headers, "X-CSRF-Token": found[1]}
    )
    assert ok(posted)["rows"] == [[1]]
    forged = {"Cookie": f"lagoa_session={TOKEN}"}
    assert secured.get("/api/overview", headers=forged).status == 401
    odd = {"Cookie": "lagoa_session=\xe9\xe9"}
    assert secured.get("/api/overview", headers=odd).status == 401


def test_open_bind_needs_a_token(served: Served) -> None:
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "lagoa.cli",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "-p",
            str(served.built.root),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOOK_TOKEN": HOOK_TOKEN},
    )
    assert started.returncode == 2, (started.stdout, started.stderr)
    assert "a token is required" in started.stderr
    assert "serving" not in started.stdout


# --- retry (changes the failed run: after the tests reading it) -------------------------------------


def test_retry_failed_run(served: Served) -> None:
    run_id = served.built.failed_run
    before = ok(served.client.get(f"/api/runs/{run_id}"))
    attempts = [a["attempt"] for a in before["attempts"] if a["task"] == "ingest_sensors"]
    served.built.flag.write_text("online")
    reply = served.client.post(f"/api/runs/{run_id}/retry", headers={"X-CSRF-Token": served.csrf})
    started = ok(reply, 202)
    twice = served.client.post(f"/api/runs/{run_id}/retry", headers={"X-CSRF-Token": served.csrf})
    assert twice.status == 409, twice.text  # one retry at a time, even before the child marks the run
    assert started["tasks"] == before["retryable"] and started["run_id"] == run_id
    assert "ingest_sensors" in started["tasks"]
    deadline = time.monotonic() + 180
    while True:
        body = ok(served.client.get(f"/api/runs/{run_id}"))
        new = [a for a in body["attempts"] if a["task"] == "ingest_sensors" and a["attempt"] > max(attempts)]
        if new and new[-1]["state"] == "succeeded" and body["state"] != "running":
            break
        failed = [a for a in new if a["state"] == "failed"]
        assert not failed, failed
        assert time.monotonic() < deadline, f"the retry did not succeed: {body}"
        time.sleep(0.2)  # a poll interval, not a wait for the outcome
    record = served.project.state.run(run_id)
    assert record is not None and record.state == body["state"] == "succeeded"
    assert count(served.project, "SELECT count(*) FROM silver.sensors") == 2
    again = served.client.post(f"/api/runs/{run_id}/retry", headers={"X-CSRF-Token": served.csrf})
    assert again.status == 409
    while not served.hooks:  # the success notification, sent as the retry ends
        assert time.monotonic() < deadline, "the webhook heard nothing of the retry"
        time.sleep(0.2)


# --- secrets (last: it reads what every other test was answered) ------------------------------------


def test_no_secret_in_any_answer(served: Served) -> None:
    client = served.client
    names = {"daily": served.built.daily_run, "failed": served.built.failed_run}
    for path in API_GETS:
        ok(client.get(path.format(**names)))
    for sql in (
        "SELECT * FROM duckdb_settings()",
        "SELECT * FROM duckdb_databases()",
        "SELECT * FROM duckdb_views()",
    ):
        ok(query(served, sql, page_size=1000))
    # The secret was live: the retry the server started sent it to the webhook (which quoted it
    # back in its error).
    assert any(h.get("Authorization") == f"Bearer {HOOK_TOKEN}" for h in served.hooks), served.hooks
    run = ok(client.get(f"/api/runs/{served.built.failed_run}"))
    for attempt in run["attempts"]:
        ok(
            client.get(
                f"/api/runs/{served.built.failed_run}/attempts/{attempt['task']}/{attempt['attempt']}/log"
            )
        )
    for page in ("/", "/runs", f"/runs/{served.built.failed_run}", "/tables", "/quality", "/lineage"):
        assert client.get(page).status == 200, page
    assert len(client.seen) > 100
    forms = {HOOK_TOKEN, quote(HOOK_TOKEN), json.dumps(HOOK_TOKEN)[1:-1]}
    for body in client.seen:
        text = body.decode("utf-8", "replace")
        for form in forms:
            assert form not in text
