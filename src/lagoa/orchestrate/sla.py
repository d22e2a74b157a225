"""SLAs: a domain must be published within ``sla`` after its data interval ends. A miss is one
``sla_missed`` event per domain per run, fired when the deadline passes with the domain
unfinished (or at once, when the run starts after it)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from lagoa.config import parse_duration
from lagoa.orchestrate.executor import Event, EventStream
from lagoa.orchestrate.graph import Graph


class SlaWatch:
    """Watches the domains of one run; subscribe it to the run's events and start it."""

    def __init__(
        self, graph: Graph, slas: dict[str, str], interval_end: datetime, run_id: str, events: EventStream
    ) -> None:
        self.run_id = run_id
        self.events = events
        self.deadlines: dict[str, datetime] = {}
        self.last_task: dict[str, str] = {}
        for domain, sla in slas.items():
            tasks = [t for t in graph.order() if t.domain == domain]
            if tasks:
                self.deadlines[domain] = interval_end + timedelta(seconds=parse_duration(sla))
                self.last_task[domain] = tasks[-1].name
        self.done: dict[str, datetime] = {}
        """When each watched domain finished."""
        self.fired: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="lagoa-sla")

    def __call__(self, event: Event) -> None:
        if event.kind == "task_succeeded":
            for domain, task in self.last_task.items():
                if task == event.task:
                    with self._lock:
                        self.done[domain] = event.at

    def start(self) -> None:
        if self.deadlines:
            self._check()  # a run that starts after a deadline has already missed it
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._check()  # a domain that finished late, or never

    def _watch(self) -> None:
        while not self._stop.wait(1.0):
            self._check()

    def _check(self) -> None:
        now = datetime.now(UTC)
        for domain, deadline in self.deadlines.items():
            with self._lock:
                finished = self.done.get(domain)
                late = finished > deadline if finished else now > deadline
                missed = domain not in self.fired and late
                if missed:
                    self.fired.add(domain)
            if missed:
                message = f"domain `{domain}` was not published by {deadline.isoformat()}"
                self.events.emit(Event("sla_missed", self.run_id, self.last_task[domain], error=message))
