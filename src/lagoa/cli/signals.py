"""Ctrl-C and SIGTERM for the commands that run work: the first stops starting new work, the
second aborts."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

EXIT_CANCELLED = 130


@contextmanager
def stop_on_signal(
    what: str = "starting no new task; running ones finish (again: abort)",
) -> Iterator[threading.Event]:
    """The first Ctrl-C (or SIGTERM) sets the event and says ``what`` happens now; the second
    aborts."""
    cancel = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt
        click.echo(f"\n{signal.Signals(signum).name}: {what}", err=True)
        cancel.set()

    saved = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield cancel
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
