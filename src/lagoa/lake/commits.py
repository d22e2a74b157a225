"""Which commits a piece of work made: the rows each commit added, per table.

An observer (the run metrics) calls :func:`collect` where a task attempt starts; the lake
records every commit made afterwards in that context, and in threads started with a copy of it
(the same way the run's fence reaches them, see ``fence.py``). Counting commits where they are
made, rather than diffing the tables' snapshots, keeps apart the rows of tasks that write the
same table side by side.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Commit:
    table: str
    """``<namespace>.<table>``."""
    added_records: int
    """The snapshot summary's ``added-records``."""


_COMMITS: ContextVar[list[Commit] | None] = ContextVar("lagoa_commits", default=None)


def collect() -> list[Commit]:
    """A new list that receives the commits made from now on in this context."""
    commits: list[Commit] = []
    _COMMITS.set(commits)
    return commits


def record(table: str, added_records: int) -> None:
    commits = _COMMITS.get()
    if commits is not None:
        commits.append(Commit(table, added_records))
