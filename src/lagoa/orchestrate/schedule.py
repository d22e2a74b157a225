"""Data intervals and cron schedules.

A run processes one data interval: a whole UTC day or hour. A schedule tick at time T runs the
latest interval that ended at or before T, so a daily pipeline on ``0 2 * * *`` processes the
previous day (D-1) at 02:00, and an hourly one on ``5 * * * *`` the previous hour.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from croniter import croniter

from lagoa.errors import ConfigError

Unit = Literal["daily", "hourly"]
STEP: dict[Unit, timedelta] = {"daily": timedelta(days=1), "hourly": timedelta(hours=1)}


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def __str__(self) -> str:
        return f"{self.start.isoformat()} → {self.end.isoformat()}"

    @property
    def pair(self) -> tuple[datetime, datetime]:
        return self.start, self.end


def floor(moment: datetime, unit: Unit) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "daily":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(minute=0, second=0, microsecond=0)


def previous_interval(moment: datetime, unit: Unit) -> Interval:
    """The latest whole interval that ended at or before ``moment``."""
    end = floor(moment, unit)
    return Interval(end - STEP[unit], end)


def intervals(start: datetime, end: datetime, unit: Unit) -> list[Interval]:
    """The whole intervals from ``start`` (floored) up to ``end``, in order."""
    found = []
    cursor = floor(start, unit)
    while cursor + STEP[unit] <= end:
        found.append(Interval(cursor, cursor + STEP[unit]))
        cursor += STEP[unit]
    return found


def parse_moment(text: str) -> datetime:
    """``2026-11-21``, ``2026-11-21T05``, ``2026-11-21T05:00`` or a full ISO timestamp, in UTC
    unless it says otherwise."""
    value = text.strip()
    try:
        if len(value) == 13 and value[10] in "T ":  # 2026-11-21T05: an hour
            value += ":00"
        moment = datetime.fromisoformat(value) if len(value) > 10 else _midnight(date.fromisoformat(value))
    except ValueError:
        raise ConfigError(
            f"`{text}` is not a date or time", hint="write 2026-11-21 (a day) or 2026-11-21T05 (an hour), UTC"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def interval_of(text: str, unit: Unit) -> Interval:
    """The interval ``--date`` names: the day, or for an hourly pipeline the hour (a bare day
    means its first hour)."""
    start = floor(parse_moment(text), unit)
    return Interval(start, start + STEP[unit])


def unit_of(schedule: str | None) -> Unit:
    """Hourly when the cron expression fires every hour, daily otherwise."""
    if schedule is None:
        return "daily"
    if schedule.strip() == "@hourly":
        return "hourly"
    fields = schedule.split()
    return "hourly" if len(fields) == 5 and fields[1] == "*" else "daily"


def check_cron(schedule: str) -> str:
    if not croniter.is_valid(schedule):
        raise ValueError(
            f"`{schedule}` is not a cron expression; write five fields, e.g. `0 2 * * *` (02:00 daily) "
            "or `5 * * * *` (hourly), or @daily / @hourly"
        )
    return schedule


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


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
