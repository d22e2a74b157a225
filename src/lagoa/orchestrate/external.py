"""Tasks that another scheduler runs (Airflow): one task of a pipeline's graph per call, in its
own process, with the same lake semantics as the embedded orchestrator.

Each scheduler run is one Lagoa run (its id derived from the scheduler's run id), so ``lagoa runs``
shows it and every commit carries it. A task attempt takes a lease of its own (one per task of the
pipeline, ``max_active_runs`` slots): an attempt the scheduler gave up on but that is still alive
is fenced at its next commit once a retry takes the lease over. The scheduler retries; Lagoa does
not retry inside an attempt, and says whether an error is worth retrying.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from lagoa.core.errors import ConfigError, LagoaError
from lagoa.core.time import Interval, parse_duration, previous_interval
from lagoa.lake.fence import fenced
from lagoa.orchestrate.executor import Event, EventStream, Outcome, RetryPolicy, execute, record_to
from lagoa.orchestrate.graph import Graph, Task, project_graph
from lagoa.orchestrate.notify import RunContext, subscriber
from lagoa.orchestrate.runs import Heartbeat, RunOptions, resolve, take_lease, unit_for
from lagoa.orchestrate.tasks import ProjectTasks

if TYPE_CHECKING:
    from collections.abc import Callable

    from lagoa.core.config.orchestration import Event as NotifyEvent
    from lagoa.state import StateStore
    from lagoa.workspace import Workspace


@dataclass(frozen=True)
class SchedulerRun:
    """A run of another scheduler: its name, the DAG, and its own run id."""

    scheduler: str
    dag_id: str
    run_id: str

    @property
    def lagoa_run_id(self) -> str:
        """The same for every task of the run, and unlike any other run's."""
        digest = hashlib.sha256(f"{self.scheduler}\0{self.dag_id}\0{self.run_id}".encode()).hexdigest()
        return f"{self.scheduler}-{digest[:16]}"


@dataclass(frozen=True)
class TaskResult:
    run_id: str
    pipeline: str
    interval: Interval
    outcome: Outcome
    run_state: str

    @property
    def retryable(self) -> bool:
        """Whether running the task again may succeed: transient errors, and errors Lagoa did
        not raise on purpose (a bug, a killed process); not a bad project or bad data."""
        error = self.outcome.exception
        return not isinstance(error, LagoaError) or error.transient


def interval_for(workspace: Workspace, pipeline: str, interval_end: datetime) -> Interval:
    """The data interval Lagoa gives a run whose scheduler interval ends at ``interval_end``:
    the latest whole day (or hour) that ended by then, as the embedded scheduler gives its tick.
    Airflow's cron timetables end a run's interval at its tick (CronTriggerTimetable: start ==
    end == tick; CronDataIntervalTimetable: tick to tick), so both give D-1 at 02:00."""
    return previous_interval(interval_end.astimezone(UTC), unit_for(workspace, pipeline))


def pipeline_graph(workspace: Workspace, pipeline: str) -> Graph:
    """The whole graph of ``pipeline`` (a pipeline or a domain), as the scheduler's DAG holds it."""
    _, domains = resolve(workspace, [pipeline])
    return project_graph(workspace, domains)


def run_task(
    workspace: Workspace,
    state: StateStore,
    pipeline: str,
    task_name: str,
    *,
    run: SchedulerRun,
    interval_end: datetime,
    final: bool,
) -> TaskResult:
    """One attempt of ``task_name`` of ``pipeline``'s graph, for the interval ``interval_end``
    gives, recorded as the next attempt of that task in the run. ``final`` says the scheduler
    will not retry it: a failure then fails the Lagoa run."""
    graph = pipeline_graph(workspace, pipeline)
    task = graph.tasks.get(task_name)
    if task is None:
        raise ConfigError(
            f"pipeline `{pipeline}` has no task `{task_name}`",
            hint=f"its tasks: {', '.join(sorted(graph.tasks))}; export the DAGs again after changing lagoa.yml",
        )
    interval = interval_for(workspace, pipeline, interval_end)
    run_id = run.lagoa_run_id
    settings = workspace.config.orchestration
    tasks = ProjectTasks(workspace, run_id, interval)
    if task.step == "validate":
        tasks.check_suites()  # a bad suite stops the task before anything lands
    details: dict[str, object] = {
        "trigger": run.scheduler,
        "dag_id": run.dag_id,
        f"{run.scheduler}_run_id": run.run_id,
    }
    state.join_run(run_id, pipeline, interval.pair, details)
    before = state.task_states(run_id).get(task_name, ("", 0))[1]
    # A retry may find the attempt it replaces still alive (the scheduler lost track of it): it
    # waits at most a lease timeout for that attempt's lease, then takes it over and fences it.
    options = RunOptions(wait=True, slots=settings.max_active_runs)
    lease = take_lease(workspace, state, f"{pipeline}:{task_name}", run_id, options)
    stream = EventStream()
    stream.subscribe(_final_or_retried(record_to(state), final))
    stop = threading.Event()
    beat = Heartbeat(state, lease, on_lost=stop.set)
    try:
        with fenced(beat.check):
            outcomes = execute(
                _alone(task),
                tasks,
                run_id=run_id,
                events=stream,
                max_parallel=1,
                policy=RetryPolicy(retries=0),
                cancel=stop,
                timeout=parse_duration(settings.task_timeout) if settings.task_timeout else None,
                attempts_before={task_name: before},
                redact=workspace.redactor.text,
            )
    finally:
        beat.stop()
        state.release(lease)
    outcome = outcomes[task_name]
    if beat.lost and outcome.state != "succeeded":
        outcome = replace(outcome, state="failed", exception=beat.error(settings.lease_timeout))
    run_state = state.settle_run(run_id, sorted(graph.tasks))
    return TaskResult(run_id, pipeline, interval, outcome, run_state)


def _alone(task: Task) -> Graph:
    graph = Graph()
    graph.add(Task(task.name, task.step, task.domain))
    return graph


def _final_or_retried(record: Callable[[Event], None], final: bool) -> Callable[[Event], None]:
    """The attempt recorder, told that a failure the scheduler will retry is a retry."""

    def forward(event: Event) -> None:
        if event.kind == "task_failed" and not final:
            event = replace(event, kind="task_retried")
        record(event)

    return forward


def notify(
    workspace: Workspace,
    state: StateStore,
    pipeline: str,
    kind: NotifyEvent,
    *,
    run: SchedulerRun,
    task: str | None,
    error: str | None,
    attempt: int = 0,
) -> int:
    """Send ``kind`` through the project's notifiers that chose it, for a task or the whole
    run; returns how many notifiers it went to. The scheduler calls this from its callbacks."""
    record = state.run(run.lagoa_run_id)
    interval = (record.interval_start, record.interval_end) if record else (None, None)
    context = RunContext(
        pipeline,
        interval if interval[0] and interval[1] else None,  # type: ignore[arg-type]
        workspace.config.orchestration.run_url.format(run_id=run.lagoa_run_id)
        if workspace.config.orchestration.run_url
        else None,
    )
    event_kind = {"failure": "task_failed", "retry": "task_retried", "success": "run_finished"}[kind]
    text = workspace.redactor.text(error) if error else None
    event = Event(event_kind, run.lagoa_run_id, task, attempt, text)  # type: ignore[arg-type]
    return _send(workspace, context, kind, event)


def _send(workspace: Workspace, context: RunContext, kind: NotifyEvent, event: Event) -> int:
    """``event`` to each notifier that chose ``kind``; how many those were."""
    chosen = [n for n in workspace.config.notifications if kind in n.events]
    for notifier in chosen:
        subscriber(notifier, context)(event)
    return len(chosen)


def sla_missed(
    workspace: Workspace,
    state: StateStore,
    pipeline: str,
    *,
    run: SchedulerRun,
    interval_end: datetime,
    now: datetime | None = None,
) -> list[str]:
    """Check the SLAs of ``pipeline`` (its own and its domains') for a scheduler run whose
    deadline came, and send ``sla_miss`` for each one missed: a target is missed unless every
    one of its tasks succeeded before its deadline. Returns the messages sent."""
    graph = pipeline_graph(workspace, pipeline)
    interval = interval_for(workspace, pipeline, interval_end)
    now = now or datetime.now(UTC)
    record = state.run(run.lagoa_run_id)
    ended: dict[str, datetime] = {}
    for attempt in record.attempts if record else ():
        if attempt.state == "succeeded" and attempt.ended_at is not None:
            ended[attempt.task] = attempt.ended_at
    missed = []
    for label, sla, tasks in sla_targets(workspace, pipeline, graph):
        deadline = interval.end + timedelta(seconds=parse_duration(sla))
        if deadline > now:
            continue
        if all(t in ended and ended[t] <= deadline for t in tasks):
            continue
        last = max(tasks, key=[t.name for t in graph.order()].index)
        message = f"{label} was not published by {deadline.isoformat()}"
        missed.append(message)
        event = Event("sla_missed", run.lagoa_run_id, last, error=message)
        _send(workspace, RunContext(pipeline, interval.pair), "sla_miss", event)
    return missed


def sla_targets(workspace: Workspace, pipeline: str, graph: Graph) -> list[tuple[str, str, list[str]]]:
    """What has an SLA in ``pipeline``: (label, sla, its tasks) for the pipeline and each domain."""
    config = workspace.config
    found: list[tuple[str, str, list[str]]] = []
    own = config.pipelines[pipeline].sla if pipeline in config.pipelines else None
    if own:
        found.append((f"pipeline `{pipeline}`", own, sorted(graph.tasks)))
    for domain, settings in config.domains.items():
        tasks = sorted(t.name for t in graph.tasks.values() if t.domain == domain)
        if settings.sla and tasks:
            found.append((f"domain `{domain}`", settings.sla, tasks))
    return found


__all__ = [
    "SchedulerRun",
    "TaskResult",
    "interval_for",
    "notify",
    "pipeline_graph",
    "run_task",
    "sla_missed",
    "sla_targets",
]
