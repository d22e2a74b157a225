"""The task graph, the executor (parallelism, retries, skips, events) and a real run."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lagoa.errors import CommitConflictError, ConfigError
from lagoa.orchestrate.executor import Event, EventStream, RetryPolicy, execute
from lagoa.orchestrate.graph import Graph, Task, project_graph
from lagoa.project import LeaseError, Project
from tests.conftest import copy_example


def chain_graph() -> Graph:
    graph = Graph()
    graph.add(Task("a", "ingest", "d"))
    graph.add(Task("b", "validate", "d", ("a",)))
    graph.add(Task("c", "transform", "d", ("b",)))
    graph.add(Task("x", "ingest", "e"))
    return graph


def test_a_transient_error_is_retried_and_a_terminal_one_is_not() -> None:
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
    outcomes = execute(
        chain_graph(), runner, run_id="r", events=events, policy=RetryPolicy(retries=3, backoff=0.01)
    )
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
    graph = project_graph(project)
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
