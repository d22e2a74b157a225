"""Run a task graph: independent tasks in parallel, transient errors retried with exponential
backoff and jitter, terminal errors failing at once, every attempt recorded and announced.

Everything that happens is an :class:`Event` on one :class:`EventStream`; notifiers, metrics and
lineage subscribe to it, so the executor never needs to know who listens.
"""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from lagoa.errors import LagoaError
from lagoa.orchestrate.graph import Graph, Task

EventKind = Literal[
    "run_started",
    "task_started",
    "task_retried",
    "task_succeeded",
    "task_failed",
    "task_skipped",
    "run_finished",
    "sla_missed",
]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    run_id: str
    task: str | None = None
    attempt: int = 0
    error: str | None = None
    rows: int | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


class EventStream:
    """Subscribers receive every event, in the order events happen; one failing subscriber does
    not stop the others or the run."""

    def __init__(self) -> None:
        self._subscribers: list[Callable[[Event], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        with self._lock:
            for subscriber in self._subscribers:
                try:
                    subscriber(event)
                except Exception:  # a listener's bug must not fail the run
                    traceback.print_exc()


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 2
    """Extra attempts after the first, for transient errors only."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled each time, with up to 50% jitter."""

    def delay(self, attempt: int) -> float:
        base: float = self.backoff * 2.0 ** (attempt - 1)
        return base * (1.0 + random.random() / 2)


@dataclass
class Outcome:
    task: str
    state: Literal["succeeded", "failed", "skipped"]
    attempts: int = 0
    error: str | None = None
    rows: int | None = None


TaskRunner = Callable[[Task], int | None]
"""Runs one task; returns the rows it wrote (or None). Raises LagoaError on failure."""


def execute(
    graph: Graph,
    runner: TaskRunner,
    *,
    run_id: str,
    events: EventStream,
    max_parallel: int = 2,
    policy: RetryPolicy | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Outcome]:
    """Run every task once its upstream tasks succeeded; a failed task's downstream is skipped.
    Setting ``cancel`` starts no new task and lets running ones finish."""
    policy = policy or RetryPolicy()
    cancel = cancel or threading.Event()
    outcomes: dict[str, Outcome] = {}
    running: dict[Future[Outcome], str] = {}
    events.emit(Event("run_started", run_id))
    with ThreadPoolExecutor(max_workers=max(max_parallel, 1), thread_name_prefix="lagoa-task") as pool:
        while len(outcomes) < len(graph.tasks):
            for task in graph.order():
                if task.name in outcomes or task.name in running.values():
                    continue
                upstream = [outcomes.get(name) for name in task.upstream]
                if any(o is not None and o.state != "succeeded" for o in upstream) or cancel.is_set():
                    outcomes[task.name] = Outcome(task.name, "skipped")
                    events.emit(Event("task_skipped", run_id, task.name))
                    continue
                if all(o is not None for o in upstream) and len(running) < max_parallel:
                    running[pool.submit(_attempts, task, runner, run_id, events, policy, cancel)] = task.name
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                outcomes[running.pop(future)] = outcome
    state = "succeeded" if all(o.state == "succeeded" for o in outcomes.values()) else "failed"
    events.emit(Event("run_finished", run_id, error=None if state == "succeeded" else "some tasks failed"))
    return outcomes


def _attempts(
    task: Task,
    runner: TaskRunner,
    run_id: str,
    events: EventStream,
    policy: RetryPolicy,
    cancel: threading.Event,
) -> Outcome:
    attempt = 0
    while True:
        attempt += 1
        events.emit(Event("task_started", run_id, task.name, attempt))
        try:
            rows = runner(task)
        except Exception as exc:  # every failure is recorded, then judged
            message = _summary(exc)
            transient = isinstance(exc, LagoaError) and exc.transient
            if transient and attempt <= policy.retries and not cancel.is_set():
                events.emit(Event("task_retried", run_id, task.name, attempt, message))
                time.sleep(policy.delay(attempt))
                continue
            events.emit(Event("task_failed", run_id, task.name, attempt, message))
            return Outcome(task.name, "failed", attempt, message)
        events.emit(Event("task_succeeded", run_id, task.name, attempt, rows=rows))
        return Outcome(task.name, "succeeded", attempt, rows=rows)


def _summary(exc: BaseException) -> str:
    text = str(exc).strip() or exc.__class__.__name__
    return text if isinstance(exc, LagoaError) else f"{exc.__class__.__name__}: {text}"


def record_to(store: Any) -> Callable[[Event], None]:
    """A subscriber writing task attempts to the state store."""

    def record(event: Event) -> None:
        if event.task is None:
            return
        if event.kind == "task_started":
            store.start_attempt(event.run_id, event.task, event.attempt)
        elif event.kind == "task_retried":
            store.finish_attempt(event.run_id, event.task, event.attempt, "retrying", error=event.error)
        elif event.kind == "task_failed":
            store.finish_attempt(event.run_id, event.task, event.attempt, "failed", error=event.error)
        elif event.kind == "task_succeeded":
            store.finish_attempt(event.run_id, event.task, event.attempt, "succeeded", rows_out=event.rows)

    return record
