"""Runs of a pipeline: one data interval through the task graph, recorded in the state database
and held by a lease so that ``max_active_runs`` holds across processes. Retries of a failed run
and backfills of many intervals are runs too.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from lagoa.core.config.orchestration import INGEST_RUNS
from lagoa.core.errors import CommitConflictError, ConfigError, LagoaError, LeaseError
from lagoa.core.logs import log_context
from lagoa.core.time import Interval, Unit, intervals, parse_duration, previous_interval, unit_of
from lagoa.lake.fence import fenced
from lagoa.orchestrate.build import new_run_id
from lagoa.orchestrate.executor import EventStream, Outcome, RetryPolicy, execute, record_to
from lagoa.orchestrate.graph import Graph, Task, project_graph
from lagoa.orchestrate.notify import RunContext, subscriber
from lagoa.orchestrate.observe.lineage import subscriber as lineage_subscriber
from lagoa.orchestrate.observe.process import observer
from lagoa.orchestrate.sla import SlaWatch
from lagoa.orchestrate.tasks import ProjectTasks

if TYPE_CHECKING:
    from collections.abc import Callable

    from lagoa.core.report import Reporter
    from lagoa.state import Lease, StateStore
    from lagoa.workspace import Workspace


log = logging.getLogger("lagoa.runs")

INGEST_GROUP = "sources"
INGEST_SLOTS = 1024
"""Ingests at once: as many as are started, as before they were runs (Iceberg's commits keep
them apart); a killed ingest's slot goes stale while the next ingests take others."""


IntervalT = TypeVar("IntervalT", Interval, None)
"""A run's data interval: an :class:`Interval`, or None for a run without one (``lagoa ingest``)."""


@dataclass
class RunResult(Generic[IntervalT]):
    run_id: str
    pipeline: str
    interval: IntervalT
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return all(o.state == "succeeded" for o in self.outcomes.values())

    @property
    def state(self) -> str:
        if self.succeeded:
            return "succeeded"
        if any(o.state == "cancelled" for o in self.outcomes.values()):
            return "cancelled"
        return "failed"


@dataclass
class RunOptions:
    """How a run executes, beyond what it processes."""

    events: EventStream | None = None
    max_parallel: int | None = None
    cancel: threading.Event | None = None
    """Set it to stop starting tasks; running ones finish (or time out)."""
    trigger: str = "manual"
    """manual, scheduled, backfill: kept in the run's details."""
    tick: datetime | None = None
    """The schedule tick a scheduled run is for."""
    slots: int | None = None
    """Runs of the pipeline at once (default: orchestration.max_active_runs)."""
    wait: bool | None = None
    """Wait for a slot instead of refusing (default: orchestration.when_busy)."""


def resolve(workspace: Workspace, names: list[str]) -> tuple[str, list[str]]:
    """The pipeline name and domains that ``names`` (a pipeline, or domains) select."""
    config = workspace.config
    if not names:
        return "all", list(config.domains)
    if len(names) == 1:
        return names[0], list(config.pipeline(names[0]).domains)
    for name in names:
        if name not in config.domains:
            raise ConfigError(
                f"`{name}` is not a domain; name one pipeline, or domains only",
                hint=f"domains: {', '.join(config.domains)}; pipelines: {', '.join(config.pipelines) or 'none'}",
            )
    return "+".join(sorted(names)), sorted(names)


def default_interval(workspace: Workspace, pipeline: str, now: datetime | None = None) -> Interval:
    """The interval a run processes when none is given: the previous day, or hour for an hourly
    pipeline."""
    return previous_interval(now or datetime.now(UTC), unit_for(workspace, pipeline))


def unit_for(workspace: Workspace, pipeline: str) -> Unit:
    """Daily or hourly: the pipeline's ``interval``, else what its schedule implies."""
    named = {*workspace.config.pipelines, *workspace.config.domains, "all"}
    config = workspace.config.pipeline(pipeline) if pipeline in named else None
    if config is None:
        return "daily"
    return config.interval or unit_of(config.schedule)


def run(
    workspace: Workspace,
    state: StateStore,
    pipeline: str,
    domains: list[str],
    interval: Interval,
    options: RunOptions | None = None,
) -> RunResult[Interval]:
    """One run of ``domains`` for ``interval``, recorded as a run of ``pipeline``."""
    options = options or RunOptions()
    run_id = new_run_id(datetime.now(UTC))
    details: dict[str, object] = {"domains": domains, "trigger": options.trigger}
    if options.tick is not None:
        details["tick"] = options.tick.isoformat()
    return _execute(workspace, state, run_id, pipeline, domains, interval, options, details=details)


def retry(
    workspace: Workspace, state: StateStore, run_id: str, options: RunOptions | None = None
) -> RunResult[Interval]:
    """Run the tasks of ``run_id`` that did not succeed again, for the same interval, as new
    attempts of the same run."""
    found = state.run(run_id)
    if found is None:
        raise ConfigError(f"no run `{run_id}`", hint="`lagoa runs` lists them")
    if found.pipeline == INGEST_RUNS:
        sources = " ".join(found.detail.get("sources") or [])
        raise ConfigError(
            f"run `{run_id}` is a `lagoa ingest`: ingests are not retried",
            hint=f"run `lagoa ingest {sources}` again; it resumes from what was committed",
        )
    if found.state == "running":
        raise LeaseError(f"run `{run_id}` is still running", hint="wait for it, or stop it first")
    if found.interval_start is None or found.interval_end is None:
        raise ConfigError(f"run `{run_id}` has no data interval to retry")
    pipeline = found.pipeline
    domains = list(found.detail.get("domains") or resolve(workspace, [pipeline])[1])
    tasks = state.task_states(run_id)
    done = {task for task, (outcome, _) in tasks.items() if outcome == "succeeded"}
    before = {task: attempts for task, (_, attempts) in tasks.items()}
    interval = Interval(found.interval_start, found.interval_end)
    return _execute(
        workspace,
        state,
        run_id,
        pipeline,
        domains,
        interval,
        options or RunOptions(),
        done=done,
        before=before,
    )


def backfill(
    workspace: Workspace,
    state: StateStore,
    pipeline: str,
    domains: list[str],
    start: datetime,
    end: datetime,
    *,
    concurrency: int = 1,
    options: RunOptions | None = None,
    on_result: Callable[[RunResult[Interval]], None] | None = None,
) -> list[RunResult[Interval]]:
    """A run per interval in [start, end), started in order, ``concurrency`` at a time."""
    options = options or RunOptions()
    unit = unit_for(workspace, pipeline)
    todo = intervals(start, end, unit)
    if not todo:
        raise ConfigError(f"no whole {unit} interval between {start.isoformat()} and {end.isoformat()}")
    slots = max(concurrency, options.slots or workspace.config.orchestration.max_active_runs)
    cancel = options.cancel or threading.Event()
    each = RunOptions(
        events=options.events,
        max_parallel=options.max_parallel,
        cancel=cancel,
        trigger="backfill",
        slots=slots,
        wait=True,
    )
    results: list[RunResult[Interval]] = []
    lock = threading.Lock()

    def one(interval: Interval) -> None:
        if cancel.is_set():
            return
        try:
            result = run(workspace, state, pipeline, domains, interval, each)
        except LeaseError:
            if cancel.is_set():  # stopped while waiting for a slot
                return
            raise
        with lock:
            results.append(result)
        if on_result is not None:
            on_result(result)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="lagoa-backfill") as pool:
        pending = {pool.submit(one, interval) for interval in todo}
        while pending:  # in slices, so that Ctrl-C's handler runs in the main thread
            finished, pending = wait(pending, timeout=0.2)
            for future in finished:
                future.result()
    return sorted(results, key=lambda r: r.interval.start)


def ingest(
    workspace: Workspace,
    state: StateStore,
    sources: list[str],
    *,
    options: RunOptions | None = None,
    reporter: Reporter | None = None,
) -> tuple[RunResult[None], ProjectTasks]:
    """A one-off run of the ``ingest`` and ``validate`` steps over ``sources`` (no data interval),
    recorded as a run of the pipeline ``ingest``. Failures are not retried, but for a commit
    refused because another ingest came first: the command says what failed, and running it again
    resumes from what was committed. Returns the run and its tasks
    (which hold each source's summary)."""
    options = replace(options or RunOptions(trigger="ingest"), slots=INGEST_SLOTS)
    run_id = new_run_id(datetime.now(UTC))
    graph = Graph()
    graph.add(Task("ingest", "ingest", INGEST_GROUP))
    graph.add(Task("validate", "validate", INGEST_GROUP, ("ingest",)))
    tasks = ProjectTasks(workspace, run_id, None, groups={INGEST_GROUP: sources}, reporter=reporter)
    details: dict[str, object] = {"sources": sources, "trigger": options.trigger}
    result = _execute(
        workspace,
        state,
        run_id,
        INGEST_RUNS,
        [],
        None,
        options,
        details=details,
        graph=graph,
        tasks=tasks,
        # Another ingest of the same files committed first: the retry reads the ledger again and
        # finds them loaded. Other failures are not retried.
        policy=RetryPolicy(retries=3, backoff=0.5, only=(CommitConflictError,)),
    )
    return result, tasks


def _execute(
    workspace: Workspace,
    state: StateStore,
    run_id: str,
    pipeline: str,
    domains: list[str],
    interval: IntervalT,
    options: RunOptions,
    *,
    details: dict[str, object] | None = None,
    done: set[str] | None = None,
    before: dict[str, int] | None = None,
    graph: Graph | None = None,
    tasks: ProjectTasks | None = None,
    policy: RetryPolicy | None = None,
) -> RunResult[IntervalT]:
    """Run ``graph`` (default: the domains' graph) with ``tasks`` (default: the project's steps)
    under a lease of ``pipeline``, recording the run and every attempt."""
    settings = workspace.config.orchestration
    graph = graph or project_graph(workspace, domains)
    tasks = tasks or ProjectTasks(workspace, run_id, interval)
    if any(task.step == "validate" for task in graph.tasks.values()):
        tasks.check_suites()  # a bad suite stops the run before anything lands
    lease = take_lease(workspace, state, pipeline, run_id, options)
    events = options.events or EventStream()
    cancel = _RunStop(options.cancel)
    try:
        if done is None:
            state.start_run(run_id, pipeline, interval.pair if interval else None, details)
        else:
            state.reopen_run(run_id)
    except BaseException:
        state.release(lease)
        raise
    # Subscribers of this run only: the caller's stream may serve several runs (a backfill).
    stream = EventStream()
    stream.subscribe(events.emit)
    stream.subscribe(record_to(state))
    context = RunContext(
        pipeline,
        interval.pair if interval else None,
        settings.run_url.format(run_id=run_id) if settings.run_url else None,
    )
    for notifier in workspace.config.notifications:
        stream.subscribe(subscriber(notifier, context))
    observed = observer(workspace, pipeline, context.interval)
    stream.subscribe(observed)
    lineage = lineage_subscriber(workspace, graph, pipeline, run_id, context.interval, observed.facts)
    if lineage is not None:
        stream.subscribe(lineage)
    slas = {d: c.sla for d, c in workspace.config.domains.items() if c.sla and d in domains}
    pipelines = workspace.config.pipelines
    pipeline_sla = pipelines[pipeline].sla if pipeline in pipelines else None
    watch = None
    if interval is not None:
        watch = SlaWatch(
            graph,
            slas,
            interval.end,
            run_id,
            stream,
            pipeline=(pipeline, pipeline_sla) if pipeline_sla else None,
            triggered_at=options.tick if options.trigger == "scheduled" and done is None else None,
        )
        stream.subscribe(watch)
        watch.start()
    beat = Heartbeat(state, lease, on_lost=cancel.set)
    lost: LeaseError | None = None
    try:
        # Every commit of the run's tasks checks the lease first; every log line names the run.
        with fenced(beat.check), log_context(run_id=run_id, interval=interval):
            outcomes = execute(
                graph,
                tasks,
                run_id=run_id,
                events=stream,
                max_parallel=options.max_parallel or settings.max_parallel,
                cancel=cancel,
                timeout=parse_duration(settings.task_timeout) if settings.task_timeout else None,
                done=done or set(),
                attempts_before=before,
                policy=policy,
                redact=workspace.redactor.text,
            )
        result = RunResult(run_id, pipeline, interval, outcomes)
        if beat.lost and not result.succeeded:  # stopped by the fence, or before starting tasks
            lost = beat.error(settings.lease_timeout)
            state.finish_run(run_id, "failed", lost.message)
        else:
            failed = [o for o in outcomes.values() if o.state == "failed"]
            error = "; ".join(f"{o.task}: {o.error}" for o in failed) or None
            if result.state == "cancelled" and error is None:
                error = "cancelled: tasks not started were cancelled"
            state.finish_run(run_id, result.state, error)
    except BaseException:
        state.finish_run(run_id, "cancelled", "interrupted")
        raise
    finally:
        if watch is not None:
            watch.stop()
        beat.stop()
        state.release(lease)
    if lost is not None:
        raise lost
    return result


def take_lease(
    workspace: Workspace, state: StateStore, pipeline: str, run_id: str, options: RunOptions
) -> Lease:
    """A slot among the pipeline's ``max_active_runs``: refused or waited for when all are held
    by live runs; a dead run's slot is taken over after ``lease_timeout``."""
    settings = workspace.config.orchestration
    stale = timedelta(seconds=parse_duration(settings.lease_timeout))
    slots = options.slots or settings.max_active_runs
    patient = options.wait if options.wait is not None else settings.when_busy == "wait"
    while True:
        lease = state.acquire(pipeline, run_id, slots=slots, stale_after=stale)
        if lease is not None:
            return lease
        if not patient:
            raise LeaseError(
                f"a run of `{pipeline}` is already going on (max_active_runs: {slots})",
                hint=f"wait for it (`lagoa runs`), or set orchestration.when_busy: wait; "
                f"a dead run's lease is taken over after {settings.lease_timeout}",
            )
        if options.cancel is not None and options.cancel.wait(1.0):
            raise LeaseError(f"stopped while waiting for a slot to run `{pipeline}`")
        if options.cancel is None:
            time.sleep(1.0)


class _RunStop(threading.Event):
    """A run's stop signal: set when the run loses its lease, and seen set when the caller's
    ``cancel`` is (a backfill's runs share the caller's; losing one lease stops one run)."""

    def __init__(self, caller: threading.Event | None) -> None:
        super().__init__()
        self._caller = caller

    def is_set(self) -> bool:
        return super().is_set() or (self._caller is not None and self._caller.is_set())


class Heartbeat:
    """Keeps a run's lease alive from a background thread, several times per lease timeout so
    that a slow beat or a busy state database does not let it go stale; notices when it is lost.

    :meth:`check` is the run's fence: it renews the lease, or raises a LeaseError, immediately
    before each commit. A renewed lease cannot be taken over for a whole ``stale_after``, so the
    commit that follows is the holder's alone.
    """

    BEATS = 6
    """Heartbeats per lease timeout."""

    def __init__(self, state: StateStore, lease: Lease, *, on_lost: Callable[[], None]) -> None:
        self._state = state
        self._lease = lease
        self._on_lost = on_lost
        self._lost = threading.Event()
        self._stop = threading.Event()
        every = lease.stale_after.total_seconds() / self.BEATS
        self._thread = threading.Thread(target=self._beat, args=(every,), daemon=True, name="lagoa-heartbeat")
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every) and not self.lost:
            try:
                self._renew()
            except LeaseError:
                return
            except LagoaError as exc:  # the state database is busy or unreachable: beat again soon
                log.warning("heartbeat of run %s failed (%s); trying again", self._lease.run_id, exc.message)

    def _renew(self) -> None:
        if self.lost or not self._state.heartbeat(self._lease):
            self._lost.set()
            self._on_lost()
            raise self.error()

    def check(self) -> None:
        """Renew the lease before a commit; raises a LeaseError when the run no longer holds it."""
        self._renew()

    def error(self, timeout: str | None = None) -> LeaseError:
        lease = self._lease
        after = timeout or f"{lease.stale_after.total_seconds():g}s"
        return LeaseError(
            f"run `{lease.run_id}` lost its lease of `{lease.pipeline}`: its heartbeat was older than "
            f"{after} (the process stalled), so another run may hold it; it stopped without committing more",
            hint="run it again (`lagoa runs` shows what it did); if the machine is this busy, "
            "raise orchestration.lease_timeout",
        )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
