"""Data intervals and cron schedules.

A run processes one data interval: a whole UTC day or hour. A schedule tick at time T runs the
latest interval that ended at or before T, so a daily pipeline on ``0 2 * * *`` processes the
previous day (D-1) at 02:00, and an hourly one on ``5 * * * *`` the previous hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from croniter import croniter

from lagoa.core.time import Interval, Unit, previous_interval


def ticks(schedule: str, after: datetime, until: datetime) -> Iterator[datetime]:
    """The schedule's ticks in (after, until]."""
    it = croniter(schedule, after.astimezone(UTC))
    while (tick := it.get_next(datetime)) <= until:
        yield tick.astimezone(UTC)


def last_tick(schedule: str, at: datetime) -> datetime:
    """The schedule's latest tick at or before ``at``."""
    tick: datetime = croniter(schedule, at.astimezone(UTC) + timedelta(seconds=1)).get_prev(datetime)
    return tick.astimezone(UTC)


def next_tick(schedule: str, after: datetime) -> datetime:
    tick: datetime = croniter(schedule, after.astimezone(UTC)).get_next(datetime)
    return tick.astimezone(UTC)


def due(
    schedule: str,
    unit: Unit,
    *,
    now: datetime,
    last: datetime | None,
    catchup: bool,
    start: datetime | None,
) -> list[tuple[datetime, Interval]]:
    """The ticks to run now and their intervals, oldest first.

    ``last`` is the tick of the pipeline's latest scheduled run. With ``catchup`` every tick
    since then (or since ``start``) runs; without it only the latest one does.
    """
    if last is None:
        if catchup and start is not None:
            after = start - timedelta(seconds=1)
        else:
            after = last_tick(schedule, now) - timedelta(seconds=1)
    else:
        after = last
    found = [(tick, previous_interval(tick, unit)) for tick in ticks(schedule, after, now)]
    if start is not None:
        found = [(tick, interval) for tick, interval in found if interval.start >= start]
    return found if catchup else found[-1:]
