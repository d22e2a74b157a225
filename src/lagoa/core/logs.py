"""Structured logs: what a log line is about (the run, task, attempt, interval and table of the work
logging it) and one JSON object per line for the ``lagoa`` loggers (``--log-format json``).

The orchestrator says what work runs with :func:`log_context`; the values live in a context
variable, so they hold for the thread that runs the work and for threads started with a copy of its
context (the way the run's fence reaches them, see ``lake/fence.py``), never for another run's
threads. :class:`JsonFormatter` adds them to every record, with the message and any error passed
through a redaction first (the workspace's ``Redactor.text``), so that no secret reaches a log.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from lagoa.core.time import Interval

LOGGER = "lagoa"
"""The logger every part of Lagoa logs under (``lagoa.runs``, ``lagoa.tasks``…)."""
FIELDS = ("run_id", "task", "attempt", "interval", "table")
"""What :func:`log_context` may set, in the order a JSON line gives them."""
UNREADABLE = "(message not shown: the project's secrets could not be resolved to redact it)"

_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("lagoa_log_context", default=None)


@contextmanager
def log_context(
    *,
    run_id: str | None = None,
    task: str | None = None,
    attempt: int | None = None,
    interval: Interval | None = None,
    table: str | None = None,
) -> Iterator[None]:
    """Records logged in this block (in this context) carry these fields, on top of those of an
    enclosing block; a field given as None keeps the enclosing value."""
    given = {"run_id": run_id, "task": task, "attempt": attempt, "interval": interval, "table": table}
    fields = {**(_CONTEXT.get() or {}), **{k: v for k, v in given.items() if v is not None}}
    token = _CONTEXT.set(fields)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context() -> dict[str, Any]:
    """The fields set for the work running in this context (none outside any)."""
    return dict(_CONTEXT.get() or {})


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: ``time`` (ISO-8601 UTC, milliseconds), ``level``, ``logger``,
    ``message``, the context's fields that are known, and ``error`` (the exception's traceback)
    when the record has one. The message and the error are redacted; a ``table`` (or another
    field) given in a record's ``extra`` takes the place of the context's."""

    def __init__(self, redact: Callable[[str], str] = str) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redacted(record.getMessage()),
        }
        context = current_context()
        for name in FIELDS:
            value = getattr(record, name, context.get(name))
            if value is not None:
                entry[name] = self._field(value)
        if record.exc_info:
            entry["error"] = self._redacted(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["error"] = self._redacted(record.exc_text)
        if record.stack_info:
            entry["stack"] = self._redacted(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False)

    def _redacted(self, text: str) -> str:
        try:
            return self.redact(text)
        except Exception:  # a secret that cannot be had: better no message than a secret's
            return UNREADABLE

    def _field(self, value: object) -> object:
        if isinstance(value, Interval):
            start, end = (_timestamp(moment.timestamp(), "seconds") for moment in value.pair)
            return f"{start}/{end}"  # an ISO-8601 time interval
        if isinstance(value, bool | int | float):
            return value
        return self._redacted(str(value))


class JsonLogHandler(logging.Handler):
    """Writes records as :class:`JsonFormatter` lines to standard error (the one of the moment of
    each record, so that a caller that swaps ``sys.stderr`` gets its lines)."""

    def __init__(self, redact: Callable[[str], str] = str, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.setFormatter(JsonFormatter(redact))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stderr
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def json_logs(redact: Callable[[str], str] = str) -> Callable[[], None]:
    """Send what the ``lagoa`` loggers say (from INFO) to standard error as JSON lines; returns
    the function that stops it."""
    logger = logging.getLogger(LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)
    handler = JsonLogHandler(redact)
    logger.addHandler(handler)
    return lambda: logger.removeHandler(handler)


def _timestamp(seconds: float, timespec: str = "milliseconds") -> str:
    """ISO-8601 in UTC, ``Z`` for its zone."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
