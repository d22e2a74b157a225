"""Metrics of real runs: a StatsD listener on loopback receives Airflow's names, and the
Prometheus exposition (in process, and served by a real ``lagoa scheduler``) agrees with the run
history and with the lake."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from lagoa.orchestrate.observe.process import observers
from lagoa.orchestrate.observe.statsd import stat_name
from lagoa.orchestrate.project import Project
from tests.conftest import MakeProject

SECRET = "tok-s3cret-metrics-77"

PROJECT = """
name: test
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    columns: {{order_id: long, amount: double}}
  missing: {{format: csv, path: nowhere/*.csv}}
domains:
  orders: {{sources: [orders]}}
  broken: {{sources: [missing]}}
observe:
  statsd: {{address: "127.0.0.1:{port}"}}
notifications:
  - {{kind: webhook, url: "http://127.0.0.1:9/${{env:HOOK_TOKEN}}", events: [failure]}}
"""
ORDERS = "order_id,amount\n1,2.0\n2,abc\n3,4.5\n"
"""Three rows, one of which does not parse (quarantined in silver)."""
DAY = datetime(2024, 6, 1, tzinfo=UTC)


class Listener:
    """A StatsD server: keeps every line it receives."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.lines: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            self.lines.extend(data.decode().splitlines())

    def wait_for(self, prefix: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.lines):
            assert time.monotonic() < deadline, f"no {prefix} among {self.lines}"
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.socket.close()


@pytest.fixture
def statsd() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()


@pytest.fixture
def ran(make_project: MakeProject, statsd: Listener, monkeypatch: pytest.MonkeyPatch) -> tuple[Project, str]:
    """A run of every domain: orders lands (one row quarantined), broken fails."""
    monkeypatch.setenv("HOOK_TOKEN", SECRET)
    project = make_project(PROJECT.format(port=statsd.port), {"data/orders_1.csv": ORDERS})
    result = project.run(interval=(DAY, DAY + timedelta(days=1)))
    assert result.outcomes["ingest_broken"].state == "failed"
    assert result.outcomes["validate_orders"].state == "succeeded"
    return project, result.run_id


def test_statsd_receives_airflows_names_for_every_task_and_the_run(
    ran: tuple[Project, str], statsd: Listener
) -> None:
    project, run_id = ran
    statsd.wait_for("airflow.dagrun.duration.")
    timers: dict[str, float] = {}
    lines = []
    for line in statsd.lines:
        timer = re.fullmatch(r"(.+):(\d+\.\d{6})\|ms", line)
        if timer:
            timers[timer[1]] = float(timer[2])
            line = f"{timer[1]}:<ms>|ms"
        lines.append(line)
    dag = "test.all"
    ran_tasks = {"ingest_orders": "success", "validate_orders": "success", "ingest_broken": "failed"}
    expected = Counter(
        [
            f"airflow.dagrun.schedule_delay.{dag}:<ms>|ms",
            f"airflow.dagrun.duration.failed.{dag}:<ms>|ms",
            "airflow.ti_successes:1|c",
            "airflow.ti_successes:1|c",
            "airflow.ti_failures:1|c",
            "airflow.lagoa.rows_written.bronze.orders:3|c",
            "airflow.lagoa.rows_written.silver.orders:2|c",
        ]
        + [f"airflow.ti.start.{dag}.{task}:1|c" for task in ran_tasks]
        + [f"airflow.ti.finish.{dag}.{task}.{state}:1|c" for task, state in ran_tasks.items()]
        + [f"airflow.dag.{dag}.{task}.duration:<ms>|ms" for task in ran_tasks]
    )
    assert Counter(lines) == expected  # the skipped validate_broken never ran: no line of it
    assert {t.identifier: t.rows for t in project.tables()}["silver.orders"] == 2

    record = project.state.run(run_id)
    assert record is not None and record.ended_at is not None
    delay = (record.started_at - (DAY + timedelta(days=1))).total_seconds() * 1000
    assert abs(timers[f"airflow.dagrun.schedule_delay.{dag}"] - delay) < 60_000
    took = (record.ended_at - record.started_at).total_seconds() * 1000
    assert 0 < timers[f"airflow.dagrun.duration.failed.{dag}"] <= took + 1000


def test_statsd_names_are_sanitised_as_airflow_allows_them() -> None:
    assert (
        stat_name("ti", "start", "my project.daily", "load/orders") == "ti.start.my_project.daily.load_orders"
    )
    assert stat_name("dag", "x" * 251) is None  # Airflow drops names past 250 characters


def _samples(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of the exposition ``text`` by name, then by sorted labels."""
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _check_against_history(
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]], project: Project, run_id: str
) -> None:
    record = project.state.run(run_id)
    assert record is not None
    pipeline = record.pipeline
    attempts = Counter((a.task, a.state) for a in record.attempts)
    counted = {
        (dict(labels)["task"], dict(labels)["state"]): value
        for labels, value in samples["lagoa_task_attempts_total"].items()
        if dict(labels)["pipeline"] == pipeline
    }
    assert counted == attempts
    assert samples["lagoa_runs_total"] == {(("pipeline", pipeline), ("state", record.state)): 1.0}
    assert samples["lagoa_run_duration_seconds_count"] == {
        (("pipeline", pipeline), ("state", record.state)): 1.0
    }

    tables = {t.identifier: t.rows for t in project.tables()}  # the lake was empty before the run
    written = {dict(labels)["table"]: value for labels, value in samples["lagoa_rows_written_total"].items()}
    assert written == {name: rows for name, rows in tables.items() if not name.endswith("__quarantine")}
    lake = project.workspace.lake
    committed = {}
    for name in tables:
        table = lake.table(name)
        snapshot = table.current_snapshot() if table is not None else None
        assert snapshot is not None
        committed[name] = snapshot.timestamp_ms / 1000
    freshness = samples["lagoa_table_last_commit_timestamp_seconds"]
    assert {dict(labels)["table"]: value for labels, value in freshness.items()} == committed


def test_prometheus_metrics_agree_with_the_run_history_and_the_lake(ran: tuple[Project, str]) -> None:
    project, run_id = ran
    text = generate_latest(observers(project.workspace).metrics.registry).decode()
    samples = _samples(text)
    _check_against_history(samples, project, run_id)
    quarantined = {
        dict(labels)["table"]: value for labels, value in samples["lagoa_rows_quarantined_total"].items()
    }
    assert quarantined == {"silver.orders": 1.0}
    assert (
        samples["lagoa_task_duration_seconds_count"][
            (("pipeline", "all"), ("state", "failed"), ("task", "ingest_broken"))
        ]
        == 1.0
    )
    assert SECRET not in text


FRESHNESS = """
name: fresh
sources:
  orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    cursor: updated_at
    partition_by: ["day(ordered_at)"]
    columns: {order_id: long, amount: double, ordered_at: timestamp, updated_at: timestamp}
  notes:
    format: csv
    path: data/notes*.csv
    columns: {note_id: long}
domains:
  orders: {sources: [orders], schedule: "0 2 * * *", sla: 3h}
  notes: {sources: [notes]}
pipelines:
  hourly: {domains: [orders, notes], schedule: "5 * * * *"}
"""
FRESH_ORDERS = """\
order_id,amount,ordered_at,updated_at
1,10.0,2024-06-01 10:00:00,2024-06-01 10:30:00
2,-5.0,2024-06-02 09:00:00,2024-06-03 08:00:00
3,30.0,2024-06-02 11:00:00,2024-06-02 11:15:00
"""
ORDERS_SUITE = {
    "name": "orders",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "order_id"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "amount", "min_value": 0}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "order_id", "max_value": 2}},
    ],
}


def test_expectations_rows_read_freshness_and_watermarks_are_measured(make_project: MakeProject) -> None:
    project = make_project(
        FRESHNESS,
        {
            "data/orders_1.csv": FRESH_ORDERS,
            "data/notes_1.csv": "note_id\n1\n2\n",
            "quality/orders.json": json.dumps(ORDERS_SUITE),
        },
    )
    result = project.run(["hourly"], interval=(DAY, DAY + timedelta(days=1)))
    assert result.succeeded, result.outcomes
    samples = _samples(generate_latest(observers(project.workspace).metrics.registry).decode())

    expectations = {
        (dict(labels)["expectation"], dict(labels)["result"]): value
        for labels, value in samples["lagoa_expectations_total"].items()
        if dict(labels)["table"] == "silver.orders" and dict(labels)["suite"] == "orders"
    }
    assert expectations == {
        ("expect_column_values_to_not_be_null(order_id)", "passed"): 1.0,
        ("expect_column_values_to_be_between(amount)", "failed"): 1.0,
        ("expect_column_values_to_be_between(order_id)", "failed"): 1.0,
    }
    read = {
        dict(labels)["source"]: value for labels, value in samples["lagoa_source_rows_read_total"].items()
    }
    assert read == {"orders": 3.0, "notes": 2.0}

    def by_table(name: str) -> dict[str, float]:
        return {dict(labels)["table"]: value for labels, value in samples[name].items()}

    # From the files' statistics: silver's partition column (ordered_at), and bronze, which is
    # not partitioned by it, the source's ordering column (updated_at).
    newest = by_table("lagoa_table_newest_data_timestamp_seconds")
    assert newest["silver.orders"] == datetime(2024, 6, 2, 11, tzinfo=UTC).timestamp()
    assert newest["bronze.orders"] == datetime(2024, 6, 3, 8, tzinfo=UTC).timestamp()
    assert "silver.notes" not in newest  # no time column
    # orders: hourly (1 h) + its domain's SLA (3 h); notes: hourly, no SLA (one more hour).
    bounds = by_table("lagoa_table_freshness_sla_seconds")
    assert bounds["silver.orders"] == bounds["bronze.orders"] == 4 * 3600
    assert bounds["silver.notes"] == 2 * 3600
    watermark = {dict(labels)["source"]: value for labels, value in samples["lagoa_source_watermark"].items()}
    assert watermark == {"orders": datetime(2024, 6, 3, 8, tzinfo=UTC).timestamp()}


SCHEDULED = """
name: sched
sources:
  orders: {{format: csv, path: data/orders*.csv, primary_key: [order_id], columns: {{order_id: long, amount: double}}}}
domains:
  orders: {{sources: [orders]}}
pipelines:
  hourly: {{domains: [orders], schedule: "0 * * * *"}}
observe:
  metrics: {{port: 0}}
  statsd: {{address: "127.0.0.1:{port}", prefix: lagoa_test}}
"""


def test_the_scheduler_serves_metrics_of_its_runs(tmp_path: Path, statsd: Listener) -> None:
    (tmp_path / "lagoa.yml").write_text(SCHEDULED.format(port=statsd.port))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "orders_1.csv").write_text(ORDERS)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "lagoa.cli", "scheduler", "--poll", "1", "-p", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    stderr: list[str] = []
    assert scheduler.stderr is not None
    reader = threading.Thread(target=lambda: stderr.extend(scheduler.stderr or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            assert time.monotonic() < deadline and scheduler.poll() is None, "".join(stderr)
            found = [m for line in list(stderr) if (m := re.search(r"metrics at (http://\S+/metrics)", line))]
            url = found[0][1] if found else None
            time.sleep(0.05)
        samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        while not samples.get("lagoa_runs_total"):  # the latest tick's run has finished
            assert time.monotonic() < deadline and scheduler.poll() is None, "".join(stderr)
            with urllib.request.urlopen(url, timeout=10) as response:
                samples = _samples(response.read().decode())
            time.sleep(0.2)
        project = Project.load(tmp_path)
        (run,) = project.state.runs(pipeline="hourly")
        assert run["state"] == "succeeded"
        _check_against_history(samples, project, run["run_id"])
        beat = samples["lagoa_scheduler_heartbeat_timestamp_seconds"][()]
        assert time.time() - 120 < beat <= time.time()
        statsd.wait_for("lagoa_test.dagrun.duration.success.sched.hourly:")
        assert "lagoa_test.scheduler_heartbeat:1|c" in statsd.lines
    finally:
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=120)
        reader.join(timeout=10)
        scheduler.stderr.close()
    assert scheduler.returncode == 0, "".join(stderr)
