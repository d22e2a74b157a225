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
    from lagoa.orchestrate.runs import RunOptions

    day = datetime(2024, 6, 1, tzinfo=UTC)
    # A scheduled run, due at its interval's end: started a long time after, it missed its SLA.
    scheduled = RunOptions(trigger="scheduled", tick=day + timedelta(days=1))
    result = project.run(interval=(day, day + timedelta(days=1)), options=scheduled)
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
    due = now - timedelta(seconds=40)  # a scheduled run, due before the deadlines
    watch = SlaWatch(
        graph, {"a": "1h", "b": "1s"}, now - timedelta(seconds=30), "r", events, triggered_at=due
    )
    events.subscribe(watch)
    watch.start()
    events.emit(Event("task_succeeded", "r", "ingest_a"))
    events.emit(Event("task_succeeded", "r", "ingest_b"))
    watch.stop()
    misses = [e.task for e in seen if e.kind == "sla_missed"]
    assert misses == ["ingest_b"]

    # A pipeline's SLA covers all of its tasks; a run due (its schedule tick) before the
    # deadline that starts after it has missed it at once.
    seen.clear()
    watch = SlaWatch(
        graph,
        {},
        now - timedelta(seconds=30),
        "r",
        events,
        pipeline=("daily", "10s"),
        triggered_at=now - timedelta(seconds=25),
    )
    events.subscribe(watch)
    watch.start()
    misses_at_start = [e for e in seen if e.kind == "sla_missed"]
    watch.stop()
    assert [e.error for e in seen if e.kind == "sla_missed"] == [
        f"pipeline `daily` was not published by {(now - timedelta(seconds=20)).isoformat()}"
    ]
    assert len(misses_at_start) == 1

    # A run triggered after the deadline (a manual run of an old interval) misses nothing,
    # however late its tasks finish; one triggered before it does.
    for triggered, late in ((None, False), (now - timedelta(seconds=31), True)):
        seen.clear()
        watch = SlaWatch(graph, {"a": "1s"}, now - timedelta(seconds=30), "r", events, triggered_at=triggered)
        events.subscribe(watch)
        watch.start()
        events.emit(Event("task_succeeded", "r", "ingest_a"))
        watch.stop()
        assert bool([e for e in seen if e.kind == "sla_missed"]) is late


AIRFLOW_PROJECT = """
name: shop
sources:
  orders: {format: csv, path: data/orders.csv, primary_key: [id]}
  leads: {format: csv, path: data/leads.csv, primary_key: [id]}
domains:
  sales: {sources: [orders], sla: 48h}
  crm: {sources: [leads], sla: 49h}
pipelines:
  daily: {domains: [sales, crm], schedule: "0 2 * * *", sla: 50h}
notifications:
  - {kind: webhook, url: "URL", events: [failure, retry, success, sla_miss]}
"""


def test_airflow_callbacks_and_deadlines_go_through_lagoas_notifiers(
    make_project: MakeProject, hooks: tuple[str, Received]
) -> None:
    """What the exported DAGs' callbacks run: `lagoa airflow notify` for a task's failure or
    retry and the run's success, and `lagoa airflow sla-check` at a deadline, which sends
    `sla_miss` only for the SLAs whose tasks had not all succeeded in time."""
    from click.testing import CliRunner

    from lagoa.cli import main
    from lagoa.orchestrate.external import SchedulerRun, run_task, sla_missed

    url, received = hooks
    project = make_project(
        AIRFLOW_PROJECT.replace("URL", url),
        {"data/orders.csv": "id,amount\n1,2.5\n", "data/leads.csv": "id,score\n1,7\n"},
    )
    run = SchedulerRun("airflow", "shop.daily", "manual__now")
    tick = datetime.now(UTC)
    midnight = tick.replace(hour=0, minute=0, second=0, microsecond=0)  # the interval's end
    # The sales domain finishes; crm's ingest fails for good.
    for task in ("ingest_sales", "validate_sales"):
        result = run_task(
            project.workspace, project.state, "daily", task, run=run, interval_end=tick, final=True
        )
        assert result.outcome.state == "succeeded"
    (project.root / "data" / "leads.csv").write_text("id,score\n1,not a number\n")
    runner = CliRunner()
    base = ["--dag-id", run.dag_id, "--run-id", run.run_id, "-p", str(project.root)]
    for args in (
        ["notify", "daily", "retry", "--task", "ingest_crm", "--try", "1", "--error", "timed out"],
        ["notify", "daily", "failure", "--task", "ingest_crm", "--try", "3", "--error", "the API is gone"],
        ["notify", "daily", "success"],
    ):
        done = runner.invoke(main, ["airflow", *args, *base])
        assert done.exit_code == 0, done.output
    events = [(body["event"], body["task"], body["attempt"], body["error"]) for _, _, body in received]
    assert events == [
        ("retry", "ingest_crm", 1, "timed out"),
        ("failure", "ingest_crm", 3, "the API is gone"),
        ("success", None, None, None),
    ]
    assert {body["run_id"] for _, _, body in received} == {run.lagoa_run_id}
    assert received[0][2]["interval"] == {
        "start": (midnight - timedelta(days=1)).isoformat(),
        "end": midnight.isoformat(),
    }

    received.clear()
    # Just past sales' deadline (48h after the interval), which it met; crm's is still ahead.
    at_three = midnight + timedelta(hours=48, minutes=1)
    assert (
        sla_missed(project.workspace, project.state, "daily", run=run, interval_end=tick, now=at_three) == []
    )
    # Past crm's 49h and the pipeline's 50h, with crm never published.
    later = midnight + timedelta(hours=51)
    missed = sla_missed(project.workspace, project.state, "daily", run=run, interval_end=tick, now=later)
    assert missed == [
        f"pipeline `daily` was not published by {(midnight + timedelta(hours=50)).isoformat()}",
        f"domain `crm` was not published by {(midnight + timedelta(hours=49)).isoformat()}",
    ]
    assert [body["event"] for _, _, body in received] == ["sla_miss", "sla_miss"]
