"""How work tells where it is: one :class:`Reporter` protocol for every stage and command.

A stage reports through the reporter in its context; the command line draws bars and spinners
from it, a scheduled run writes it to the task's log, and Python callers may pass their own.
"""

from __future__ import annotations

import logging
from typing import Protocol


class Reporter(Protocol):
    """Told what a piece of work (a source, a table, a model) is doing. Called from worker
    threads too, so implementations must be thread-safe."""

    def stage(self, item: str, message: str) -> None:
        """``item`` moved on to ``message`` (``loading bronze``, ``no new records``…)."""

    def rows(self, item: str, done: int, total: int | None) -> None:
        """``done`` rows of ``item`` so far, of about ``total`` (None when unknown)."""


class SilentReporter:
    """Reports nowhere."""

    def stage(self, item: str, message: str) -> None:
        pass

    def rows(self, item: str, done: int, total: int | None) -> None:
        pass


class LogReporter:
    """Reports to a logger at INFO."""

    def __init__(self, logger: logging.Logger | str = "lagoa") -> None:
        self.log = logging.getLogger(logger) if isinstance(logger, str) else logger

    def stage(self, item: str, message: str) -> None:
        self.log.info("%s: %s", item, message)

    def rows(self, item: str, done: int, total: int | None) -> None:
        of = f" of ~{total:,}" if total else ""
        self.log.info("%s: %s%s rows", item, f"{done:,}", of)
