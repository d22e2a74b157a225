"""What the state database hands back: runs, their task attempts and leases, as typed records.

A record also reads as a mapping of its column names (``run["state"]``), so that it serialises
as the row it is (``record.as_dict()`` for JSON) and callers may treat rows alike.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any


class _Row(Mapping[str, Any]):
    """Mapping access to a frozen dataclass's fields, by name."""

    def __getitem__(self, key: str) -> Any:
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The record as plain data (nested records too), e.g. for ``json.dumps``."""
        return {name: _plain(getattr(self, name)) for name in self._names()}


def _plain(value: Any) -> Any:
    if isinstance(value, _Row):
        return value.as_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class AttemptRecord(_Row):
    """One attempt of a task. Tasks that never started (skipped, cancelled) are attempt 0."""

    run_id: str
    task: str
    attempt: int
    state: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    rows_in: int | None
    rows_out: int | None
    log: str | None


@dataclasses.dataclass(frozen=True)
class RunRecord(_Row):
    """A run of a pipeline, with its attempts when read one run at a time."""

    run_id: str
    pipeline: str
    interval_start: datetime | None
    interval_end: datetime | None
    state: str
    started_at: datetime
    ended_at: datetime | None
    error: str | None
    details: str | None
    """JSON: the domains or sources, the trigger, the schedule tick."""
    attempts: tuple[AttemptRecord, ...] = ()

    @property
    def detail(self) -> dict[str, Any]:
        """``details``, parsed."""
        parsed: dict[str, Any] = json.loads(self.details or "{}")
        return parsed


@dataclasses.dataclass(frozen=True)
class LeaseRecord(_Row):
    """A slot of a pipeline's ``max_active_runs``, held by a run."""

    pipeline: str
    slot: int
    run_id: str
    holder: str
    """``host:pid`` of the process holding it."""
    heartbeat_at: datetime
