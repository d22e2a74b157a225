"""Data intervals and cron schedules: which interval a tick runs, what is due, catch-up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lagoa.core.errors import ConfigError
from lagoa.core.time import Interval, interval_of, intervals, previous_interval, unit_of
from lagoa.orchestrate.schedule import due


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_tick_runs_the_interval_before_it() -> None:
    assert previous_interval(at("2026-11-22 02:00"), "daily") == Interval(at("2026-11-21"), at("2026-11-22"))
    assert previous_interval(at("2026-11-22 00:05"), "hourly") == Interval(
        at("2026-11-21 23:00"), at("2026-11-22 00:00")
    )
    assert unit_of("0 2 * * *") == "daily" and unit_of("5 * * * *") == "hourly"
    assert unit_of("@hourly") == "hourly" and unit_of(None) == "daily"


def test_dates_name_days_or_hours() -> None:
    assert interval_of("2024-06-03", "daily") == Interval(at("2024-06-03"), at("2024-06-04"))
    assert interval_of("2024-06-03T05", "hourly") == Interval(at("2024-06-03 05:00"), at("2024-06-03 06:00"))
    assert interval_of("2024-06-03", "hourly").end == at("2024-06-03 01:00")
    with pytest.raises(ConfigError, match="not a date"):
        interval_of("June 3rd", "daily")
    assert len(intervals(at("2024-06-01"), at("2024-07-01"), "daily")) == 30
    assert len(intervals(at("2024-06-01 10:00"), at("2024-06-01 13:30"), "hourly")) == 3


def test_without_catchup_only_the_latest_tick_is_due() -> None:
    now = at("2026-11-22 09:30")
    work = due("0 2 * * *", "daily", now=now, last=None, catchup=False, start=None)
    assert work == [(at("2026-11-22 02:00"), Interval(at("2026-11-21"), at("2026-11-22")))]
    # Once that tick ran, nothing is due until the next one.
    assert due("0 2 * * *", "daily", now=now, last=work[0][0], catchup=False, start=None) == []
    later = now + timedelta(days=3)
    assert [
        i.start for _, i in due("0 2 * * *", "daily", now=later, last=work[0][0], catchup=False, start=None)
    ] == [at("2026-11-24")]


def test_catchup_runs_every_missed_tick_from_start_in_order() -> None:
    now = at("2024-06-04 03:00")
    work = due("0 2 * * *", "daily", now=now, last=None, catchup=True, start=at("2024-06-01"))
    assert [i.start for _, i in work] == [at("2024-06-01"), at("2024-06-02"), at("2024-06-03")]
    hourly = due(
        "15 * * * *", "hourly", now=at("2024-06-01 03:20"), last=None, catchup=True, start=at("2024-06-01")
    )
    assert [i.start.hour for _, i in hourly] == [0, 1, 2]
    resumed = due(
        "15 * * * *", "hourly", now=at("2024-06-01 05:20"), last=hourly[-1][0], catchup=True, start=None
    )
    assert [i.start.hour for _, i in resumed] == [3, 4]


def test_a_bad_cron_expression_is_a_config_error(tmp_path: object) -> None:
    from lagoa.core.config import PipelineConfig

    with pytest.raises(ValueError, match="not a cron expression"):
        PipelineConfig(domains=["x"], schedule="every day")
