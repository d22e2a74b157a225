"""Values as the commands show them to people: times to the second in UTC, short data intervals,
durations, and what a task did."""

from __future__ import annotations

from datetime import UTC, datetime


def when(value: datetime | None) -> str:
    """A time for people, to the second, in UTC (which the table's title says once)."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def span(start: datetime | None, end: datetime | None) -> str:
    """A data interval, short: ``2024-06-01`` for a day, ``2024-06-01 10:00`` for an hour."""
    if start is None or end is None:
        return ""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    midnight = start.hour == start.minute == start.second == 0 and end.hour == end.minute == end.second == 0
    if midnight and (end - start).days == 1:
        return f"{start:%Y-%m-%d}"
    if midnight:
        return f"{start:%Y-%m-%d} → {end:%Y-%m-%d}"
    if (end - start).total_seconds() == 3600 and start.minute == start.second == 0:
        return f"{start:%Y-%m-%d %H:%M}"
    return f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M}"


def took(started: datetime | None, ended: datetime | None) -> str:
    """A duration for people: 12.3s, or 4.5m from two minutes on."""
    if started is None or ended is None:
        return ""
    return seconds_taken((ended - started).total_seconds())


def did(summary: str | None, rows: int | None) -> str:
    """What a task did: its summary ("3 models built, 12 tests passed"), else its rows."""
    if summary:
        return summary
    return "" if rows is None else f"{rows:,} row{'s' * (rows != 1)}"


def seconds_taken(seconds: float | None) -> str:
    """``seconds`` for people, as :func:`took` ("" while still going)."""
    if seconds is None:
        return ""
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"
