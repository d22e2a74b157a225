"""SLAs: a domain (or a whole pipeline) must be published within ``sla`` after its data interval
ends. A miss is one ``sla_missed`` event per domain (or pipeline) per run, fired when the deadline
passes with the domain unfinished (or at once, when the run starts after it).

Only a deadline still ahead when the run was triggered can be missed: a scheduled run is triggered
at its schedule tick (so a scheduler that was down and catches up late reports the miss), any other
run (manual, a backfill, a retry) when it starts (so re-running an old interval is no miss).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from lagoa.core.time import parse_duration
from lagoa.orchestrate.executor import Event, EventStream
from lagoa.orchestrate.graph import Graph


class SlaWatch:
    """Watches the domains (and the whole pipeline) of one run; subscribe it to the run's events
    and start it."""

    def __init__(
        self,
        graph: Graph,
        slas: dict[str, str],
        interval_end: datetime,
        run_id: str,
        events: EventStream,
        pipeline: tuple[str, str] | None = None,
        triggered_at: datetime | None = None,
    ) -> None:
        """``slas`` maps domains to their SLA; ``pipeline`` is the pipeline's (name, SLA);
        ``triggered_at``: when the run was due (a schedule tick), else it is now."""
        self.run_id = run_id
        self.events = events
        self.deadlines: dict[str, datetime] = {}
        self.waiting: dict[str, set[str]] = {}
        """The tasks each watched target still waits for."""
        self.last_task: dict[str, str] = {}
        targets = {
            f"domain `{d}`": (sla, {t.name for t in graph.tasks.values() if t.domain == d})
            for d, sla in slas.items()
        }
        if pipeline is not None:
            targets[f"pipeline `{pipeline[0]}`"] = (pipeline[1], set(graph.tasks))
        order = [t.name for t in graph.order()]
        triggered_at = triggered_at or datetime.now(UTC)
        for label, (sla, tasks) in targets.items():
            deadline = interval_end + timedelta(seconds=parse_duration(sla))
            if tasks and deadline > triggered_at:
                self.deadlines[label] = deadline
                self.waiting[label] = set(tasks)
                self.last_task[label] = max(tasks, key=order.index)
        self.done: dict[str, datetime] = {}
        """When each watched target finished."""
        self.fired: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="lagoa-sla")

    def __call__(self, event: Event) -> None:
        if event.kind == "task_succeeded" and event.task:
            with self._lock:
                for label, tasks in self.waiting.items():
                    tasks.discard(event.task)
                    if not tasks and label not in self.done:
                        self.done[label] = event.at

    def start(self) -> None:
        if self.deadlines:
            self._check()  # a run that starts after a deadline has already missed it
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._check()  # a target that finished late, or never

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            self._check()

    def _check(self) -> None:
        now = datetime.now(UTC)
        for label, deadline in self.deadlines.items():
            with self._lock:
                finished = self.done.get(label)
                late = finished > deadline if finished else now > deadline
                missed = label not in self.fired and late
                if missed:
                    self.fired.add(label)
            if missed:
                message = f"{label} was not published by {deadline.isoformat()}"
                self.events.emit(Event("sla_missed", self.run_id, self.last_task[label], error=message))
