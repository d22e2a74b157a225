"""The events of a run as people watch it: a line per thing that happened, and on a terminal a
live view below the lines of the tasks running now, with their time so far and their latest
message ("orders: loading bronze", "429 from api_orders, retrying in 2.0 s").

Off a terminal (piped, in CI, in a log) only the lines are written, so nothing is lost but the
redrawing. :class:`RunLines` is the subscriber; it is a context manager so that the live view is
always taken down, even when the run is interrupted.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from lagoa.cli.formats import did

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

    from lagoa.orchestrate.executor import Event, EventStream

LOGGED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ [\w.]+: (.*)$")
"""A line of a task's log as the executor captures it: the message is what the live view shows."""
PROBLEMS = frozenset({"task_failed", "task_retried", "task_warned"})
"""What is told even when the tasks themselves are not (a backfill's many runs)."""


@dataclass
class _Running:
    started: float
    message: str = ""


def latest_message(log: str | None) -> str:
    """The message of the last line a task logged, without its time, level and logger."""
    for line in reversed((log or "").splitlines()):
        found = LOGGED.match(line)
        if found:
            return found.group(1)
    return ""


def event_line(event: Event, label: str) -> str | None:
    """A line for people about ``event`` of the task ``label`` (None for the log so far)."""
    kind = event.kind
    if kind == "task_log" or event.task is None:
        return None
    if kind == "task_retried":
        wait = f" in {event.wait:.1f} s" if event.wait is not None else ""
        return f" retrying  {label}{wait} (attempt {event.attempt + 1}): {event.error}"
    if kind == "task_warned":
        return f"  warning  {label}: {event.error}"
    done = did(event.summary, event.rows)
    detail = f": {event.error}" if event.error else (f" ({done})" if done else "")
    return f"{kind.removeprefix('task_'):>9}  {label}{detail}"


class RunLines:
    """Subscribes to a run's events (or to several runs', as a backfill's) and shows them.

    ``every_task``: a line for each task's start and end; otherwise only failures, retries and
    warnings (a backfill says when each run ends itself). ``live``: draw the running tasks below
    the lines (default: when standard error is a terminal). ``say`` writes a line (default:
    standard error), for the scheduler's own timestamps.
    """

    def __init__(
        self,
        *,
        every_task: bool = True,
        live: bool | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        from rich.console import Console

        from lagoa.orchestrate.executor import EventStream

        self.every_task = every_task
        self.console: Console = Console(stderr=True, highlight=False)
        on_terminal = self.console.is_terminal and not self.console.is_dumb_terminal
        # JSON log lines go to standard error too, and must reach it whole, one per line.
        self.live_view = on_terminal and not _json_logs() if live is None else live
        self._say = say
        self.events = EventStream()
        self.events.subscribe(self)
        self._running: dict[tuple[str, str], _Running] = {}
        self._lock = threading.Lock()
        self._live: Live | None = None

    def __enter__(self) -> EventStream:
        if self.live_view:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._render,
                console=self.console,
                transient=True,
                refresh_per_second=4,
                redirect_stdout=False,  # standard output is for results, and may be piped
            )  # what else goes to standard error meanwhile (a backfill's lines) goes above the view
            self._live.start()
        return self.events

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, event: Event) -> None:
        if event.task is None:
            return
        key = (event.run_id, event.task)
        label = event.task if self.every_task else f"{_short(event.run_id)} {event.task}"
        with self._lock:
            if event.kind == "task_started":
                self._running[key] = _Running(time.monotonic())
            elif event.kind in ("task_log", "task_warned", "task_retried") and key in self._running:
                running = self._running[key]
                if event.kind == "task_log":
                    running.message = latest_message(event.log) or running.message
                elif event.kind == "task_warned":
                    running.message = _first_line(event.error)
                else:
                    running.message = f"attempt {event.attempt + 1} in {event.wait or 0:.1f} s: "
                    running.message += _first_line(event.error)
            elif event.kind != "task_log":
                self._running.pop(key, None)
        live = self._live  # once: the view may be taken down meanwhile
        if event.kind in PROBLEMS or self.every_task:
            line = event_line(event, label)
            if line is not None:
                self._write(line, live)
        elif live is not None:
            live.refresh()

    def _write(self, line: str, live: Live | None) -> None:
        if self._say is not None:
            self._say(line.strip())
        elif live is not None:
            import textwrap

            from rich.text import Text

            width = self.console.width  # wrapped under the task's name, as a terminal shows it
            wrapped = "\n".join(
                textwrap.fill(part, width, subsequent_indent=" " * 11, break_on_hyphens=False)
                if part
                else part
                for part in line.splitlines()
            )
            live.refresh()  # the view as it is now goes below the line, not the one before
            live.console.print(Text(wrapped), soft_wrap=True)
        else:
            click.echo(line, err=True)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            running = sorted(self._running.items(), key=lambda item: item[1].started)
        lines = []
        for (run_id, task), state in running:
            label = task if self.every_task else f"{_short(run_id)} {task}"
            line = Text(f"  running  {label}  {now - state.started:5.1f}s  ", style="bold")
            line.append(state.message, style="dim")
            line.no_wrap, line.overflow = True, "ellipsis"
            lines.append(line)
        return Group(*lines)


def _json_logs() -> bool:
    import logging

    from lagoa.core.logs import LOGGER, JsonLogHandler

    return any(isinstance(h, JsonLogHandler) for h in logging.getLogger(LOGGER).handlers)


def _first_line(text: str | None) -> str:
    return (text or "").strip().partition("\n")[0]


def _short(run_id: str) -> str:
    from lagoa.orchestrate.build import short_run_id

    return short_run_id(run_id)
