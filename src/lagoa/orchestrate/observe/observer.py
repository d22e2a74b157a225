"""A run's events as the facts metrics are made of: how long the run and each attempt took, how
they ended, and which rows each attempt committed to which table.

One :class:`RunObserver` per run turns the event stream into calls on :class:`Sink`s (the
Prometheus registry, a StatsD client), so that every sink counts the same things.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from lagoa.lake.commits import Commit
from lagoa.orchestrate.executor import Event
from lagoa.orchestrate.observe.facts import Facts, collect

if TYPE_CHECKING:
    from lagoa.quality.outcome import ValidationResult

ATTEMPT_STATES = {"task_succeeded": "succeeded", "task_retried": "retrying", "task_failed": "failed"}
"""The state an attempt ends in, as the run history records it (a timed-out one: ``timed_out``)."""


@dataclass(frozen=True)
class RunInfo:
    pipeline: str
    dag_id: str
    """``<project>.<pipeline>``: the DAG id of the pipeline's Airflow export."""
    interval: tuple[datetime, datetime] | None


@dataclass(frozen=True)
class Attempt:
    task: str
    state: str
    """``succeeded``, ``retrying``, ``failed``, ``timed_out``; ``skipped`` and ``cancelled`` for a
    task that never started."""
    seconds: float | None
    """None for a task that never started."""
    commits: tuple[Commit, ...] = ()
    validations: tuple[ValidationResult, ...] = ()
    reads: tuple[tuple[str, int], ...] = ()
    """Rows read from each source."""


class Sink(Protocol):
    def run_started(self, run: RunInfo, at: datetime) -> None: ...
    def attempt_started(self, run: RunInfo, task: str) -> None: ...
    def attempt_ended(self, run: RunInfo, attempt: Attempt) -> None: ...
    def sla_missed(self, run: RunInfo, task: str | None) -> None: ...
    def run_finished(self, run: RunInfo, state: str, seconds: float) -> None: ...


class RunObserver:
    """An event subscriber of one run, telling its sinks what happened."""

    def __init__(self, run: RunInfo, sinks: list[Sink]) -> None:
        self.run = run
        self.sinks = sinks
        self._started: datetime | None = None
        self._started_at: dict[str, datetime] = {}
        self._facts: dict[str, Facts] = {}
        self._states: set[str] = set()

    def __call__(self, event: Event) -> None:
        kind, task = event.kind, event.task
        if kind == "run_started":
            self._started = event.at
            for sink in self.sinks:
                sink.run_started(self.run, event.at)
        elif kind == "task_started" and task is not None:
            # task_started is emitted in the attempt's own context: what it does lands in these facts.
            self._started_at[task] = event.at
            self._facts[task] = collect()
            for sink in self.sinks:
                sink.attempt_started(self.run, task)
        elif kind in ATTEMPT_STATES and task is not None:
            started = self._started_at.pop(task, event.at)
            state = "timed_out" if event.timed_out else ATTEMPT_STATES[kind]
            seconds = (event.at - started).total_seconds()
            facts = self.facts(task)
            self._end(
                Attempt(
                    task,
                    state,
                    seconds,
                    tuple(facts.commits),
                    tuple(facts.validations),
                    tuple(facts.reads.items()),
                )
            )
        elif kind in ("task_skipped", "task_cancelled") and task is not None:
            self._end(Attempt(task, kind.removeprefix("task_"), None))
        elif kind == "sla_missed":
            for sink in self.sinks:
                sink.sla_missed(self.run, task)
        elif kind == "run_finished":
            seconds = (event.at - (self._started or event.at)).total_seconds()
            for sink in self.sinks:
                sink.run_finished(self.run, self._state(event), seconds)

    def facts(self, task: str) -> Facts:
        """What the task's latest attempt did (kept after it ends, for subscribers after this one)."""
        return self._facts.get(task) or Facts()

    def _end(self, attempt: Attempt) -> None:
        self._states.add(attempt.state)
        for sink in self.sinks:
            sink.attempt_ended(self.run, attempt)

    def _state(self, finished: Event) -> str:
        """The run's state as ``RunResult.state`` says it: a cancelled task makes it cancelled."""
        if finished.error is None:
            return "succeeded"
        return "cancelled" if "cancelled" in self._states else "failed"
