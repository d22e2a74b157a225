"""Run a task graph: independent tasks in parallel, transient errors retried with exponential
backoff and jitter, terminal errors failing at once, every attempt recorded and announced.

Everything that happens is an :class:`Event` on one :class:`EventStream`; notifiers, metrics and
lineage subscribe to it, so the executor never needs to know who listens.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from lagoa.core.errors import LagoaError, TaskTimeoutError
from lagoa.core.logs import log_context
from lagoa.orchestrate.graph import Graph, Task

logger = logging.getLogger("lagoa.executor")

EventKind = Literal[
    "run_started",
    "task_started",
    "task_log",
    "task_warned",
    "task_retried",
    "task_succeeded",
    "task_failed",
    "task_skipped",
    "task_cancelled",
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
    summary: str | None = None
    """On task_succeeded: what the attempt did, in one line for people (see TaskReport)."""
    log: str | None = None
    """What the attempt logged (on task_retried, task_succeeded, task_failed), or has logged so far
    (on task_log, sent while it runs, at most once every ``LIVE_LOG_SECONDS``)."""
    timed_out: bool = False
    """On task_failed: the attempt ran past its timeout."""
    wait: float | None = None
    """On task_retried: the seconds before the next attempt starts."""
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
    only: tuple[type[LagoaError], ...] = ()
    """When given, only these (transient) errors are retried."""

    def retries_on(self, error: Exception) -> bool:
        if not (isinstance(error, LagoaError) and error.transient):
            return False
        return not self.only or isinstance(error, self.only)

    def delay(self, attempt: int) -> float:
        base: float = self.backoff * 2.0 ** (attempt - 1)
        return base * (1.0 + random.random() / 2)


@dataclass
class Outcome:
    task: str
    state: Literal["succeeded", "failed", "skipped", "cancelled"]
    attempts: int = 0
    error: str | None = None
    rows: int | None = None
    summary: str | None = None
    exception: Exception | None = field(default=None, repr=False, compare=False)
    """What the last attempt raised, for callers that report it themselves (``lagoa ingest``)."""


@dataclass(frozen=True)
class TaskReport:
    """What a task did: the rows it wrote, and one line saying what they were and what else
    happened ("3 models built, 12 tests passed"; "25 expectations: 22 passed, 3 warned")."""

    rows: int | None
    summary: str


TaskRunner = Callable[[Task], "int | TaskReport | None"]
"""Runs one task; returns the rows it wrote (or None), or a TaskReport. Raises LagoaError on
failure. A runner may also have an ``interrupt(task)`` method, called when the task times out."""


def execute(
    graph: Graph,
    runner: TaskRunner,
    *,
    run_id: str,
    events: EventStream,
    max_parallel: int = 2,
    policy: RetryPolicy | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    done: set[str] | frozenset[str] = frozenset(),
    attempts_before: dict[str, int] | None = None,
    redact: Callable[[str], str] = str,
) -> dict[str, Outcome]:
    """Run every task once its upstream tasks succeeded; a failed task's downstream is skipped.

    Setting ``cancel`` starts no new task (they end ``cancelled``) and lets running ones finish.
    An attempt longer than ``timeout`` seconds fails. Tasks in ``done`` succeeded earlier (a
    retried run) and are not run again; ``attempts_before`` numbers the new attempts after the old.
    ``redact`` removes secrets from every error and log before anyone hears of it.
    """
    policy = policy or RetryPolicy()
    cancel = cancel or threading.Event()
    outcomes: dict[str, Outcome] = {name: Outcome(name, "succeeded") for name in done if name in graph.tasks}
    running: dict[Future[Outcome], str] = {}
    first = attempts_before or {}
    events.emit(Event("run_started", run_id))
    pool = ThreadPoolExecutor(max_workers=max(max_parallel, 1), thread_name_prefix="lagoa-task")
    try:
        while len(outcomes) < len(graph.tasks):
            for task in graph.order():
                if task.name in outcomes or task.name in running.values():
                    continue
                upstream = [outcomes.get(name) for name in task.upstream]
                if any(o is not None and o.state in ("failed", "skipped") for o in upstream):
                    outcomes[task.name] = Outcome(task.name, "skipped")
                    events.emit(Event("task_skipped", run_id, task.name))
                elif cancel.is_set() or any(o is not None and o.state == "cancelled" for o in upstream):
                    outcomes[task.name] = Outcome(task.name, "cancelled")
                    events.emit(Event("task_cancelled", run_id, task.name))
                elif all(o is not None for o in upstream) and len(running) < max_parallel:
                    attempt = _Attempts(task, runner, run_id, events, policy, cancel, timeout, redact)
                    # In the caller's context: the run's fence (lake/fence.py) holds for its tasks.
                    context = contextvars.copy_context()
                    running[pool.submit(context.run, attempt, first.get(task.name, 0))] = task.name
            if not running:
                continue
            finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                outcomes[running.pop(future)] = future.result()
    except BaseException:  # aborted (a second Ctrl-C): stop the running tasks' DuckDB work, and
        cancel.set()  # wait for them, so that their attempts are recorded before the run ends
        interrupt = getattr(runner, "interrupt", None)
        for name in running.values():
            if interrupt is not None:
                interrupt(graph.tasks[name])
        while running:
            finished, _ = wait(running, timeout=0.5)
            for future in finished:
                running.pop(future)
        raise
    finally:
        pool.shutdown(wait=False)
    state = "succeeded" if all(o.state == "succeeded" for o in outcomes.values()) else "failed"
    events.emit(Event("run_finished", run_id, error=None if state == "succeeded" else "some tasks failed"))
    return outcomes


class _Attempts:
    """A task's attempts: retried with backoff while the error is transient, each one logged."""

    def __init__(
        self,
        task: Task,
        runner: TaskRunner,
        run_id: str,
        events: EventStream,
        policy: RetryPolicy,
        cancel: threading.Event,
        timeout: float | None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.task = task
        self.runner = runner
        self.run_id = run_id
        self.events = events
        self.policy = policy
        self.cancel = cancel
        self.timeout = timeout
        self.redact = redact

    def _live(self, attempt: int) -> Callable[[str, str | None], None]:
        """Tells the stream what a running attempt has logged so far (the run page shows it), and
        each warning it logs as it comes (a source's retries, say): a task_warned event."""
        name = self.task.name

        def send(text: str, warning: str | None) -> None:
            if warning is not None:
                self.events.emit(Event("task_warned", self.run_id, name, attempt, self.redact(warning)))
            self.events.emit(Event("task_log", self.run_id, name, attempt, log=self.redact(text)))

        return send

    def __call__(self, before: int) -> Outcome:
        task, events, run_id = self.task, self.events, self.run_id
        attempt = before
        while True:
            attempt += 1
            events.emit(Event("task_started", run_id, task.name, attempt))
            with (
                capture_log(self._live(attempt)) as captured,
                log_context(run_id=run_id, task=task.name, attempt=attempt),
            ):
                try:
                    done = self._once()
                    error: Exception | None = None
                except Exception as exc:  # every failure is recorded, then judged
                    error = exc
            text = captured.text()
            log = self.redact(text) if text else None
            if error is None:
                report = done if isinstance(done, TaskReport) else TaskReport(done, "")
                rows, summary = report.rows, report.summary or None
                events.emit(
                    Event("task_succeeded", run_id, task.name, attempt, rows=rows, summary=summary, log=log)
                )
                return Outcome(task.name, "succeeded", attempt - before, rows=rows, summary=summary)
            message = self.redact(_summary(error))
            about = {"run_id": run_id, "task": task.name, "attempt": attempt}  # not in the log captured above
            logger.error("%s attempt %d failed: %s", task.name, attempt, message, exc_info=error, extra=about)
            if (
                self.policy.retries_on(error)
                and attempt - before <= self.policy.retries
                and not self.cancel.is_set()
            ):
                wait = self.policy.delay(attempt - before)
                events.emit(Event("task_retried", run_id, task.name, attempt, message, log=log, wait=wait))
                time.sleep(wait)
                continue
            timed_out = isinstance(error, TaskTimeoutError)
            events.emit(
                Event("task_failed", run_id, task.name, attempt, message, log=log, timed_out=timed_out)
            )
            return Outcome(task.name, "failed", attempt - before, message, exception=error)

    def _once(self) -> int | TaskReport | None:
        if self.timeout is None:
            return self.runner(self.task)
        # Python cannot stop a thread: the attempt runs in its own (daemon) thread, and on timeout
        # the runner is asked to interrupt it. Its commit, if it still comes, is atomic.
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["rows"] = self.runner(self.task)
            except BaseException as exc:
                box["error"] = exc

        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(target,), daemon=True, name=f"lagoa-{self.task.name}"
        )
        thread.start()
        thread.join(self.timeout)
        if thread.is_alive():
            interrupt = getattr(self.runner, "interrupt", None)
            if interrupt is not None:
                interrupt(self.task)
            raise TaskTimeoutError(f"timed out after {self.timeout:g}s (orchestration.task_timeout)")
        if "error" in box:
            raise box["error"]
        done: int | TaskReport | None = box.get("rows")
        return done


_BUFFER: contextvars.ContextVar[_Captured | None] = contextvars.ContextVar("lagoa_task_log", default=None)
"""The log of the attempt whose work runs in this context: its thread, and threads started with a
copy of its context (a timed attempt's own thread, an ingest's fetches)."""
LIVE_LOG_SECONDS = 1.0
"""How often, at most, a running attempt's log so far is sent (each send is a state write)."""


class _ThreadLog(logging.Handler):
    """Appends records to the log of the attempt running in the current context, if any."""

    def emit(self, record: logging.LogRecord) -> None:
        buffer = _BUFFER.get()
        if buffer is not None:
            warning = record.getMessage() if record.levelno >= logging.WARNING else None
            buffer.add(self.format(record), warning)


class _Captured:
    def __init__(self, live: Callable[[str, str | None], None] | None = None) -> None:
        self.lines: list[str] = []
        self._live = live
        self._sent = 0.0

    def add(self, line: str, warning: str | None = None) -> None:
        """Keep ``line``; tell the listener at once of a ``warning``, of the rest now and then."""
        self.lines.append(line)
        now = time.monotonic()
        if self._live is not None and (warning is not None or now - self._sent >= LIVE_LOG_SECONDS):
            self._sent = now
            try:
                self._live("\n".join(self.lines), warning)
            except Exception:  # showing the log live must never fail the task
                self._live = None

    def text(self) -> str | None:
        return "\n".join(self.lines) or None


class capture_log:  # noqa: N801 - used as a context manager, like contextlib's
    """Collect what the ``lagoa`` loggers say in this context while the block runs; ``live`` hears
    the log so far as it grows (at most once every ``LIVE_LOG_SECONDS``, and with each warning
    logged, which it is given too)."""

    def __init__(self, live: Callable[[str, str | None], None] | None = None) -> None:
        self.live = live

    def __enter__(self) -> _Captured:
        self.captured = _Captured(self.live)
        self._token = _BUFFER.set(self.captured)
        return self.captured

    def __exit__(self, *exc: object) -> None:
        _BUFFER.reset(self._token)


_handler = _ThreadLog()
_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
_logger = logging.getLogger("lagoa")
_logger.addHandler(_handler)
_logger.setLevel(logging.INFO)
_logger.propagate = False


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
        elif event.kind == "task_log":
            store.running_log(event.run_id, event.task, event.attempt, event.log)
        elif event.kind == "task_retried":
            store.finish_attempt(
                event.run_id, event.task, event.attempt, "retrying", error=event.error, log=event.log
            )
        elif event.kind == "task_failed":
            state = "timed_out" if event.timed_out else "failed"
            store.finish_attempt(
                event.run_id, event.task, event.attempt, state, error=event.error, log=event.log
            )
        elif event.kind == "task_succeeded":
            store.finish_attempt(
                event.run_id,
                event.task,
                event.attempt,
                "succeeded",
                rows_out=event.rows,
                summary=event.summary,
                log=event.log,
            )
        elif event.kind in ("task_skipped", "task_cancelled"):
            store.record_unstarted(event.run_id, event.task, event.kind.removeprefix("task_"))

    return record
