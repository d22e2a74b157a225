"""Time as the whole program reads it: data intervals, durations (``30s``, ``2h``) and moments
(``2026-11-21``, ``2026-11-21T05``), in UTC.

A run processes one data interval: a whole UTC day or hour.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from lagoa.core.errors import ConfigError

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

    def __iter__(self) -> Iterator[datetime]:
        """``start, end = interval``, as a Python source may unpack its context's interval."""
        return iter(self.pair)


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


def parse_duration(text: str) -> int:
    """Seconds in ``30s``, ``15m``, ``2h``, ``1d``, ``2w``."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text)
    if match is None:
        raise ValueError(f"`{text}` is not a duration; write 30s, 15m, 2h or 1d")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]


def cutoff(text: str, now: datetime | None = None) -> datetime:
    """The moment ``text`` names: a duration before ``now`` (``7d``), or a date or time."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return parse_moment(text)
    return (now or datetime.now(UTC)) - timedelta(seconds=seconds)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
