"""What the state database hands back: runs, their task attempts and leases, as typed records.

A record also reads as a mapping of its column names (``run["state"]``), so that it serialises
as the row it is (``record.as_dict()`` for JSON) and callers may treat rows alike.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

EARLIER = "earlier_seconds"
"""In a retried run's details: what its passes before the latest took, in seconds."""
RESUMED = "resumed_at"
"""In a retried run's details: when its latest pass began."""


def utc(value: datetime) -> datetime:
    """A timestamp with its zone (SQLite hands them back without one; they were written in UTC)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
    summary: str | None = None
    """What a successful attempt did, in one line for people."""


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

    @property
    def seconds(self) -> float | None:
        """How long the run took (None while it runs): the sum of its passes when retried, not
        the time from its first start to the end of its retry."""
        if self.ended_at is None:
            return None
        detail = self.detail
        since = datetime.fromisoformat(detail[RESUMED]) if RESUMED in detail else self.started_at
        return float(detail.get(EARLIER, 0.0)) + (utc(self.ended_at) - utc(since)).total_seconds()


@dataclasses.dataclass(frozen=True)
class LeaseRecord(_Row):
    """A slot of a pipeline's ``max_active_runs``, held by a run."""

    pipeline: str
    slot: int
    run_id: str
    holder: str
    """``host:pid`` of the process holding it."""
    heartbeat_at: datetime
