"""Fencing: commits made on behalf of a run go through only while the run holds its lease.

A run that stalls (its process paused, its machine overloaded) past its lease's timeout may find
the lease taken over by another run when it wakes up; it must then commit nothing more. The
orchestrator sets a check for the work it runs (:func:`fenced`), and the lake calls it inside
the catalog's own transaction, immediately before the transaction that swaps the table's
metadata commits (:func:`guard`): a check that raises rolls the commit back. The check is set in
a context variable, so it holds for the thread that runs the work (and for threads started with a
copy of its context), not for other runs of the same process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

Check = Callable[[], None]
"""Raises (a LeaseError) when the work may no longer commit."""

_CHECK: ContextVar[Check | None] = ContextVar("lagoa_fence", default=None)


@contextmanager
def fenced(check: Check) -> Iterator[None]:
    """Commits made in this block (in this context) call ``check`` first."""
    token = _CHECK.set(check)
    try:
        yield
    finally:
        _CHECK.reset(token)


def check_fence() -> None:
    """Raise if the work running in this context may no longer commit."""
    check = _CHECK.get()
    if check is not None:
        check()


def guard(engine: Any) -> None:
    """Check the fence in every transaction of the catalog's SQLAlchemy ``engine`` just before
    it commits (the one that makes an Iceberg commit visible is among them)."""
    import sqlalchemy as sa

    if not sa.event.contains(engine, "commit", _before_commit):
        sa.event.listen(engine, "commit", _before_commit)


def _before_commit(_connection: Any) -> None:
    check_fence()
