"""Notifications from a real run: webhook, Slack and e-mail servers on loopback receive exactly
the failure and SLA-miss messages, with no secret in them."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import ORDERS_CONFIG, MakeProject

Received = list[tuple[str, dict[str, str], dict[str, Any]]]


@pytest.fixture
def hooks() -> Iterator[tuple[str, Received]]:
    received: Received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.path, dict(self.headers), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[str]]]:
    """A minimal SMTP server: accepts every message and keeps its text."""
    messages: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"220 test\r\n")
            data: list[str] = []
            reading = False
            for raw in self.rfile:
                line = raw.decode().rstrip("\r\n")
                if reading:
                    if line == ".":
                        reading = False
                        messages.append("\n".join(data))
                        self.wfile.write(b"250 ok\r\n")
                    else:
                        data.append(line)
                    continue
                verb = line.split(" ")[0].upper()
                if verb == "DATA":
                    reading, data = True, []
                    self.wfile.write(b"354 go\r\n")
                elif verb == "QUIT":
                    self.wfile.write(b"221 bye\r\n")
                    return
                else:
                    self.wfile.write(b"250 ok\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], messages
    server.shutdown()
    server.server_close()


def test_failure_and_sla_miss_reach_every_notifier_without_secrets(
    make_project: MakeProject,
    hooks: tuple[str, Received],
    smtp: tuple[int, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, received = hooks
    port, mails = smtp
    monkeypatch.setenv("HOOK_TOKEN", "tok-s3cret-123")
    monkeypatch.setenv("SLACK_URL", f"{base}/slack/T000/B000/xyzSECRET")
    config = (
        ORDERS_CONFIG
        + f"""
  missing:
    format: csv
    path: nowhere/*.csv
domains:
  orders: {{sources: [orders], sla: 1s}}
  broken: {{sources: [missing]}}
orchestration: {{run_url: "http://lagoa.test/runs/{{run_id}}"}}
notifications:
  - kind: webhook
    url: {base}/hook
    headers: {{Authorization: "Bearer ${{env:HOOK_TOKEN}}"}}
  - kind: slack
    url: "${{env:SLACK_URL}}"
    events: [failure]
  - kind: email
    smtp_host: 127.0.0.1
    smtp_port: {port}
    sender: lagoa@example.com
    to: [team@example.com]
"""
    )
    project = make_project(
        config,
        {
            "data/orders_1.csv": "order_id,amount,ordered_at,updated_at\n1,2.0,2024-06-01 10:00:00,2024-06-01 10:00:00\n"
        },
    )
    day = datetime(2024, 6, 1, tzinfo=UTC)
    result = project.run(interval=(day, day + timedelta(days=1)))
    assert result.outcomes["ingest_broken"].state == "failed"
    assert result.outcomes["validate_orders"].state == "succeeded"

    hook = [(body["event"], body["task"]) for path, _, body in received if path == "/hook"]
    assert sorted(hook) == [("failure", "ingest_broken"), ("sla_miss", "validate_orders")]
    failure = next(body for path, _, body in received if path == "/hook" and body["event"] == "failure")
    assert failure["interval"] == {"start": day.isoformat(), "end": (day + timedelta(days=1)).isoformat()}
    assert "no file matches" in failure["error"] and failure["attempt"] == 1
    assert failure["url"] == f"http://lagoa.test/runs/{result.run_id}"
    assert all(
        headers["Authorization"] == "Bearer tok-s3cret-123"
        for path, headers, _ in received
        if path == "/hook"
    )

    slack = [body["text"] for path, _, body in received if path.startswith("/slack")]
    assert len(slack) == 1 and "task failed" in slack[0] and "ingest_broken" in slack[0]
    assert f"http://lagoa.test/runs/{result.run_id}" in slack[0]
    assert len(mails) == 2 and any("sla_miss" in m for m in mails)

    everything = json.dumps([body for _, _, body in received]) + "".join(mails)
    stored = json.dumps(project.state.run(result.run_id), default=str)
    for secret in ("tok-s3cret-123", "xyzSECRET"):
        assert secret not in everything and secret not in stored


def test_an_sla_fires_only_for_a_late_domain_and_once() -> None:
    from lagoa.orchestrate.executor import Event, EventStream
    from lagoa.orchestrate.graph import Graph, Task
    from lagoa.orchestrate.sla import SlaWatch

    graph = Graph()
    graph.add(Task("ingest_a", "ingest", "a"))
    graph.add(Task("ingest_b", "ingest", "b"))
    events = EventStream()
    seen: list[Event] = []
    events.subscribe(seen.append)
    now = datetime.now(UTC)
    watch = SlaWatch(graph, {"a": "1h", "b": "1s"}, now - timedelta(seconds=30), "r", events)
    events.subscribe(watch)
    watch.start()
    events.emit(Event("task_succeeded", "r", "ingest_a"))
    events.emit(Event("task_succeeded", "r", "ingest_b"))
    watch.stop()
    misses = [e.task for e in seen if e.kind == "sla_missed"]
    assert misses == ["ingest_b"]

    # A pipeline's SLA covers all of its tasks: missed when the last one finishes late.
    seen.clear()
    watch = SlaWatch(graph, {}, now - timedelta(seconds=30), "r", events, pipeline=("daily", "10s"))
    events.subscribe(watch)
    watch.start()
    misses_at_start = [e for e in seen if e.kind == "sla_missed"]
    watch.stop()
    assert [e.error for e in seen if e.kind == "sla_missed"] == [
        f"pipeline `daily` was not published by {(now - timedelta(seconds=20)).isoformat()}"
    ]
    assert len(misses_at_start) == 1
