"""What an incremental source's fetch knows about its run: the data interval and the watermark."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lagoa.core.config import Incremental
from lagoa.core.time import Interval, parse_duration


@dataclass(frozen=True)
class SourceContext:
    """Passed to Python sources, and what HTTP requests are templated with."""

    interval: Interval | None
    """The run's data interval (UTC), when the run has one."""
    watermark: str | None
    """Where to read from: the committed watermark (or ``initial``) minus the look-back."""

    def values(self) -> dict[str, str]:
        return {
            "interval.start": self.interval.start.isoformat() if self.interval else "",
            "interval.end": self.interval.end.isoformat() if self.interval else "",
            "watermark": self.watermark or "",
        }


def request_watermark(incremental: Incremental | None, committed: str | None) -> str | None:
    """The watermark a fetch asks from: the committed one (or ``initial``), minus the look-back."""
    if incremental is None:
        return None
    value = committed or incremental.initial
    if value is None or not incremental.lookback:
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a time: the look-back does not apply
    return (moment - timedelta(seconds=parse_duration(incremental.lookback))).isoformat()
