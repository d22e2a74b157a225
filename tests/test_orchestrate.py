"""The task graph, the executor (parallelism, retries, skips, events) and a real run."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lagoa.core.errors import CommitConflictError, ConfigError, LeaseError
from lagoa.orchestrate.executor import Event, EventStream, RetryPolicy, execute, record_to
from lagoa.orchestrate.graph import Graph, Task, project_graph
from lagoa.orchestrate.project import Project
from lagoa.orchestrate.runs import retry
from lagoa.state import StateStore
from tests.conftest import copy_example


def chain_graph() -> Graph:
    graph = Graph()
    graph.add(Task("a", "ingest", "d"))
    graph.add(Task("b", "validate", "d", ("a",)))
    graph.add(Task("c", "transform", "d", ("b",)))
    graph.add(Task("x", "ingest", "e"))
    return graph


def test_a_transient_error_is_retried_and_a_terminal_one_is_not(tmp_path: Path) -> None:
    calls: dict[str, int] = {}
    seen: list[Event] = []

    def runner(task: Task) -> int:
        calls[task.name] = calls.get(task.name, 0) + 1
        if task.name == "a" and calls["a"] <= 2:
            raise CommitConflictError("catalog busy")
        if task.name == "x":
            raise ConfigError("bad setting")
        return 1

    events = EventStream()
    events.subscribe(seen.append)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    store.start_run("r", "all")
    events.subscribe(record_to(store))
    outcomes = execute(
        chain_graph(), runner, run_id="r", events=events, policy=RetryPolicy(retries=3, backoff=0.01)
    )
    run = store.run("r")
    assert run is not None
    assert [(a["attempt"], a["state"]) for a in run["attempts"] if a["task"] == "a"] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "succeeded"),
    ]
    assert [(a["attempt"], a["state"]) for a in run["attempts"] if a["task"] == "x"] == [(1, "failed")]
    assert (outcomes["a"].state, outcomes["a"].attempts) == ("succeeded", 3)
    assert (outcomes["x"].state, outcomes["x"].attempts) == ("failed", 1)
    assert outcomes["c"].state == "succeeded" and calls["x"] == 1
    assert [e.kind for e in seen if e.task == "a"] == [
        "task_started",
        "task_retried",
        "task_started",
        "task_retried",
        "task_started",
        "task_succeeded",
    ]


def test_a_failed_task_skips_its_downstream_and_independent_tasks_run_in_parallel() -> None:
    running, peak = 0, 0
    lock = threading.Lock()

    def runner(task: Task) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        if task.name == "b":
            raise ConfigError("broken")

    outcomes = execute(chain_graph(), runner, run_id="r", events=EventStream(), max_parallel=2)
    assert outcomes["b"].state == "failed" and outcomes["c"].state == "skipped"
    assert outcomes["x"].state == "succeeded" and peak == 2


def test_graph_and_a_recorded_run_of_the_retail_example(tmp_path: Path) -> None:
    folder = tmp_path / "retail"
    copy_example("retail_lakehouse", folder)
    project = Project.load(folder)
    graph = project_graph(project.workspace)
    assert graph.tasks["publish_orders"].upstream == ("transform_orders",)
    assert graph.tasks["validate_web"].upstream == ("ingest_web",)
    assert '"transform_orders" -> "publish_orders";' in graph.dot()
    # From dbt's manifest: the fact table refs the other domains' staging models.
    assert set(graph.tasks["transform_orders"].upstream) == {
        "validate_orders",
        "transform_marketing",
        "transform_web",
    }

    result = project.run()
    assert result.succeeded, result.outcomes
    assert project.query("select count(*) > 0 from gold.fct_daily_store_metrics")[1] == [(True,)]
    run = project.state.run(result.run_id)
    assert run is not None and run["state"] == "succeeded"
    assert {a["task"] for a in run["attempts"]} == set(graph.tasks)

    lease = project.state.acquire("all", "someone-else")
    assert lease is not None
    with pytest.raises(LeaseError, match="already going on"):
        project.run()
    project.state.release(lease)


def test_a_task_past_its_timeout_fails_and_its_downstream_is_skipped() -> None:
    release = threading.Event()
    interrupted: list[str] = []

    class Runner:
        def __call__(self, task: Task) -> int:
            if task.name == "b":
                release.wait(30)
            return 1

        def interrupt(self, task: Task) -> None:
            interrupted.append(task.name)
            release.set()

    outcomes = execute(chain_graph(), Runner(), run_id="r", events=EventStream(), timeout=0.2)
    assert outcomes["b"].state == "failed" and "timed out after 0.2s" in (outcomes["b"].error or "")
    assert outcomes["b"].attempts == 1  # a timeout is not retried
    assert outcomes["c"].state == "skipped" and outcomes["x"].state == "succeeded"
    assert interrupted == ["b"]


def test_cancelling_starts_no_new_task_and_lets_running_ones_finish() -> None:
    cancel = threading.Event()
    finished: list[str] = []

    def runner(task: Task) -> None:
        if task.name == "a":
            cancel.set()  # Ctrl-C while `a` runs
            time.sleep(0.1)
        finished.append(task.name)

    graph = chain_graph()
    outcomes = execute(graph, runner, run_id="r", events=EventStream(), max_parallel=1, cancel=cancel)
    assert outcomes["a"].state == "succeeded" and "a" in finished
    assert {outcomes[name].state for name in ("b", "c")} == {"cancelled"}
    assert "b" not in finished and "c" not in finished


ORDERS_DOMAIN = """
sources:
  erp_orders:
    format: csv
    path: data/orders*.csv
    primary_key: [order_id]
    ordering: updated_at
    columns: {order_id: long, quantity: long, updated_at: timestamp}
domains:
  orders: {sources: [erp_orders]}
"""
RETRY_CONFIG = "name: retry\nquality: {on_fail: fail}" + ORDERS_DOMAIN
SUITE = """{"name": "erp_orders", "expectations": [
  {"type": "expect_column_values_to_be_between", "kwargs": {"column": "quantity", "min_value": 0}}]}"""


def test_a_retried_run_reruns_only_what_did_not_succeed(make_project: Any, tmp_path: Path) -> None:
    orders = "order_id,quantity,updated_at\n1,2,2024-06-01 10:00:00\n2,-1,2024-06-01 11:00:00\n"
    project = make_project(RETRY_CONFIG, {"data/orders.csv": orders, "quality/erp_orders.json": SUITE})
    failed = project.run(
        ["orders"], interval=(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
    )
    assert failed.state == "failed"
    assert failed.outcomes["validate_orders"].state == "failed"
    assert "quantity" in (failed.outcomes["validate_orders"].error or "")

    # The fix: the expectation only warns now. The retry does not ingest again.
    (tmp_path / "lagoa.yml").write_text(RETRY_CONFIG.replace("on_fail: fail", "on_fail: warn"))
    fixed = Project.load(tmp_path)
    retried = retry(fixed.workspace, fixed.state, failed.run_id)
    assert retried.run_id == failed.run_id and retried.succeeded
    assert retried.outcomes["ingest_orders"].attempts == 0  # succeeded before: not run again
    run = fixed.state.run(failed.run_id)
    assert run is not None and run["state"] == "succeeded"
    assert [(a["task"], a["attempt"], a["state"]) for a in run["attempts"]] == [
        ("ingest_orders", 1, "succeeded"),
        ("validate_orders", 1, "failed"),
        ("validate_orders", 2, "succeeded"),
    ]
    assert run["interval_start"] == datetime(2024, 6, 1, tzinfo=UTC)
    assert "rows to bronze" in (run["attempts"][0]["log"] or "")  # each attempt's log is kept
    assert fixed.query("select count(*) from silver.erp_orders")[1] == [(2,)]


SCHEDULED = (
    "name: scheduled"
    + ORDERS_DOMAIN
    + """pipelines:
  nightly: {domains: [orders], schedule: "0 2 * * *", catchup: true, start: 2024-06-01}
"""
)


def test_the_scheduler_catches_up_in_order_then_waits_for_the_next_tick(make_project: Any) -> None:
    orders = "order_id,quantity,updated_at\n1,2,2024-06-01 10:00:00\n"
    project = make_project(SCHEDULED, {"data/orders.csv": orders})
    now = datetime(2024, 6, 4, 3, 0, tzinfo=UTC)
    scheduler = project.scheduler(clock=lambda: now)
    results = scheduler.run_once()
    assert [(r.pipeline, r.interval.start.day, r.state) for r in results] == [
        ("nightly", 1, "succeeded"),
        ("nightly", 2, "succeeded"),
        ("nightly", 3, "succeeded"),
    ]
    assert project.scheduler(clock=lambda: now).run_once() == []  # nothing new is due
    tomorrow = project.scheduler(clock=lambda: now + timedelta(days=1)).run_once()
    assert [r.interval.start.day for r in tomorrow] == [4]
    stored = project.state.runs(pipeline="nightly")
    assert len(stored) == 4 and all(json.loads(r["details"])["trigger"] == "scheduled" for r in stored)


def test_a_running_attempts_log_is_recorded_as_it_grows(tmp_path: Path) -> None:
    """The run page streams a running attempt's log from the state: the log so far is written
    while the attempt runs, and its final log replaces it when it ends."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    events = EventStream()
    events.subscribe(record_to(store))
    store.start_run("run-live", "p")
    go = threading.Event()
    logger = logging.getLogger("lagoa.test_live")

    def runner(task: Task) -> int:
        logger.info("fetched page 1")
        go.wait(60)
        logger.info("fetched page 2")
        return 2

    graph = Graph()
    graph.add(Task("a", "ingest", "d"))
    worker = threading.Thread(target=lambda: execute(graph, runner, run_id="run-live", events=events))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            record = store.run("run-live")
            attempts = record.attempts if record else ()
            if attempts and attempts[0].log and "fetched page 1" in attempts[0].log:
                break
            assert time.monotonic() < deadline, "the running attempt's log never reached the state"
            time.sleep(0.05)
        assert attempts[0].state == "running" and "fetched page 2" not in (attempts[0].log or "")
    finally:
        go.set()
        worker.join(60)
    record = store.run("run-live")
    assert record is not None
    (attempt,) = record.attempts
    assert attempt.state == "succeeded"
    assert attempt.log is not None and attempt.log.endswith("INFO lagoa.test_live: fetched page 2")
    store.close()


def test_each_task_tells_what_it_did_and_the_history_keeps_it(tmp_path: Path) -> None:
    import re

    from lagoa.quality.results import load_results

    folder = tmp_path / "retail"
    copy_example("retail_lakehouse", folder)
    project = Project.load(folder)
    day = datetime(2024, 6, 1, tzinfo=UTC)
    result = project.run(["daily"], interval=(day, day + timedelta(days=30)))
    assert result.state == "succeeded"
    said = {name: outcome.summary or "" for name, outcome in result.outcomes.items()}

    _, validations = load_results(project.storage, result.run_id)
    checked = [
        r for v in validations if v.table in ("silver.erp_orders", "silver.products") for r in v.results
    ]
    validate = said["validate_orders"]
    silver = sum(  # the lake's first run: all of silver
        project.query(f"select count(*) from silver.{t}")[1][0][0] for t in ("erp_orders", "products")
    )
    assert validate.startswith(f"{silver:,} rows to silver; {len(checked)} expectations: ")
    assert f"{sum(r.success for r in checked)} passed" in validate
    dropped = sum(not r.success and r.action == "drop" for r in checked)
    assert dropped and f"{dropped} dropped rows" in validate
    quarantined = sum(
        project.query(f"select count(*) from silver.{t}__quarantine where _lagoa_run_id = '{result.run_id}'")[
            1
        ][0][0]
        for t in ("erp_orders", "products")
    )
    shown = re.search(r"; ([\d,]+) rows quarantined: (.*)$", validate)
    assert shown is not None and int(shown.group(1).replace(",", "")) == quarantined > 0
    by_kind = [re.match(r"([\d,]+) (.+)", part) for part in shown.group(2).split(", ")]
    assert all(by_kind) and sum(int(m.group(1).replace(",", "")) for m in by_kind if m) == quarantined
    assert "4 price not a decimal(10,2)" in validate  # a typing failure, named by column and type

    ingested = re.fullmatch(r"([\d,]+) rows to bronze", said["ingest_orders"])
    assert ingested and int(ingested.group(1).replace(",", "")) == result.outcomes["ingest_orders"].rows
    models = re.fullmatch(r"(\d+) models built, (\d+) tests passed", said["transform_orders"])
    assert models is not None and int(models.group(1)) == 3 and int(models.group(2)) > 0
    gold = project.query("select count(*) from gold.fct_daily_store_metrics")[1][0][0]
    assert said["publish_orders"] == f"{gold:,} rows to gold.fct_daily_store_metrics"

    record = project.state.run(result.run_id)
    assert record is not None
    assert {a.task: a.summary for a in record.attempts} == said


def test_ingest_json_tells_the_suites_verdicts_and_the_quarantine_reasons(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from lagoa.cli import main

    folder = tmp_path / "retail"
    copy_example("retail_lakehouse", folder)
    done = CliRunner().invoke(main, ["ingest", "--json", "-p", str(folder)])
    assert done.exit_code == 0, done.output
    sources = {s["source"]: s for s in json.loads(done.stdout)["sources"]}
    orders = sources["erp_orders"]
    assert sum(orders["reasons"].values()) == orders["quarantined"] > 0
    (validation,) = orders["validations"]
    assert validation["table"] == "silver.erp_orders" and validation["expectations"] > validation["passed"]
    assert validation["failed"]["drop"] and all(
        orders["reasons"].get(e) for e in validation["failed"]["drop"]
    )
