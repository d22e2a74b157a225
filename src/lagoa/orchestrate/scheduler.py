"""The scheduler: runs each scheduled pipeline when its cron ticks, one interval per tick.

Progress lives in the state database (each scheduled run records its tick), so a restarted
scheduler, or a second one on another machine sharing the state database, picks up where the
last left off; leases keep two schedulers from running the same pipeline at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.core.errors import LagoaError, LeaseError
from lagoa.core.report import Reporter, SilentReporter
from lagoa.core.time import Interval
from lagoa.orchestrate.executor import EventStream
from lagoa.orchestrate.observe.process import heartbeat
from lagoa.orchestrate.runs import RunOptions, RunResult, run, unit_for
from lagoa.orchestrate.schedule import due, next_tick

if TYPE_CHECKING:
    from lagoa.state import StateStore
    from lagoa.workspace import Workspace

SLICE = 0.2
"""Seconds the main thread waits at a time: a signal delivered to another thread only runs its
Python handler once the main thread wakes."""
HEARTBEAT = 5.0
"""Seconds between heartbeats of the loop (Airflow's ``scheduler_heartbeat`` beats as often)."""


class Scheduler:
    """Starts the due runs of every scheduled pipeline; pipelines run side by side, each one's
    intervals in order."""

    def __init__(
        self,
        workspace: Workspace,
        state: StateStore,
        *,
        stop: threading.Event | None = None,
        events: EventStream | None = None,
        reporter: Reporter | None = None,
        poll: float = 30.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.workspace = workspace
        self.state = state
        self.stop = stop or threading.Event()
        """Set it (SIGTERM does) to start nothing new; running runs finish their running tasks."""
        self.events = events
        self.reporter = reporter or SilentReporter()
        """Told what the scheduler does: ``stage(pipeline, message)``, or ``stage('', message)``."""
        self.poll = poll
        self.clock = clock or (lambda: datetime.now(UTC))
        """What time it is; a replay of the past (or a test) may pass another clock."""
        self.results: list[RunResult[Interval]] = []
        self._busy: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def due(self, now: datetime | None = None) -> dict[str, list[tuple[datetime, Interval]]]:
        """The ticks each pipeline should run now, oldest first."""
        now = now or self.clock()
        found = {}
        for name, config in self.workspace.config.scheduled().items():
            assert config.schedule is not None
            work = due(
                config.schedule,
                unit_for(self.workspace, name),
                now=now,
                last=self.state.last_scheduled(name),
                catchup=config.catchup,
                start=config.start,
            )
            if work:
                found[name] = work
        return found

    def run_once(self) -> list[RunResult[Interval]]:
        """Run everything due now and wait for it."""
        self._start_due()
        self._join()
        return self.results

    def serve(self) -> None:
        """Run due work until ``stop`` is set, then wait for the runs in progress."""
        if not self.workspace.config.scheduled():
            self.reporter.stage("", "no pipeline or domain has a `schedule`: nothing to do")
            return
        beat = time.monotonic()
        while not self.stop.is_set():
            self._start_due()
            until = time.monotonic() + self._sleep()
            while not self.stop.is_set() and time.monotonic() < until:
                if time.monotonic() >= beat:
                    heartbeat(self.workspace)
                    beat = time.monotonic() + HEARTBEAT
                self.stop.wait(SLICE)
        self.reporter.stage("", "stopping: no new runs; waiting for running tasks to finish")
        self._join()

    def _sleep(self) -> float:
        now = self.clock()
        upcoming = [
            next_tick(config.schedule, now)
            for config in self.workspace.config.scheduled().values()
            if config.schedule is not None
        ]
        wait = min((tick - now).total_seconds() for tick in upcoming) if upcoming else self.poll
        return max(min(wait, self.poll), 0.05)

    def _start_due(self) -> None:
        for name, work in self.due().items():
            with self._lock:
                thread = self._busy.get(name)
                if thread is not None and thread.is_alive():
                    continue
                thread = threading.Thread(target=self._run, args=(name, work), name=f"lagoa-schedule-{name}")
                self._busy[name] = thread
            thread.start()

    def _run(self, name: str, work: list[tuple[datetime, Interval]]) -> None:
        domains = list(self.workspace.config.pipeline(name).domains)
        for tick, interval in work:
            if self.stop.is_set():
                return
            options = RunOptions(events=self.events, cancel=self.stop, trigger="scheduled", tick=tick)
            self.reporter.stage(name, f"tick {tick.isoformat()}, interval {interval}")
            try:
                result = run(self.workspace, self.state, name, domains, interval, options)
            except LeaseError as exc:  # another process runs it; try again on the next poll
                self.reporter.stage(name, exc.message)
                return
            except LagoaError as exc:  # e.g. the state database is down: try again on the next poll
                self.reporter.stage(name, f"could not run: {exc}")
                return
            with self._lock:
                self.results.append(result)
            self.reporter.stage(name, f"run {result.run_id} {result.state}")

    def _join(self) -> None:
        with self._lock:
            threads = list(self._busy.values())
        for thread in threads:
            while thread.is_alive():
                thread.join(SLICE)
