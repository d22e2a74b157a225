"""When and how runs execute: schedules of domains and pipelines, run limits and notifications."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lagoa.core.config.base import Model, check_cron
from lagoa.core.time import parse_duration


class Scheduled(Model):
    """When a domain or pipeline runs on its own, and how late it may finish."""

    schedule: str | None = None
    """Cron expression (UTC), e.g. ``0 2 * * *`` to process D-1 at 02:00, ``5 * * * *`` hourly."""
    interval: Literal["daily", "hourly"] | None = None
    """The data interval of each run; default hourly when the schedule fires every hour, daily
    otherwise."""
    catchup: bool = False
    """Run every missed tick since ``start`` (or since the last scheduled run), not just the latest."""
    start: datetime | None = None
    """The first data interval a catch-up runs (UTC)."""
    sla: str | None = None
    """How long after its data interval ends it must be published (``2h``, ``30m``); a miss fires
    the ``sla_miss`` notifications once per run."""

    @field_validator("sla")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else check_cron(value)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


class DomainConfig(Scheduled):
    """A business domain: the sources its ingest task loads and the dbt models it transforms. A
    domain with a ``schedule`` is also a pipeline of its own, named after it."""

    sources: list[str]
    description: str | None = None
    select: str | None = None
    """dbt selector of the domain's models (``tag:orders``, ``path:models/orders``…); default
    ``tag:<domain>``."""


class PipelineConfig(Scheduled):
    """A named set of domains run together: by ``lagoa run <pipeline>`` or on its schedule."""

    domains: list[str]
    description: str | None = None


INGEST_RUNS = "ingest"
"""The pipeline name ``lagoa ingest`` records its runs under: no pipeline or domain may have it."""
RESERVED_PIPELINE_NAMES = ("show", "retry", "all", INGEST_RUNS)
"""Names a pipeline cannot have: `lagoa run` subcommands, every domain together, and the runs
of `lagoa ingest`."""

Event = Literal["failure", "retry", "success", "sla_miss"]
DEFAULT_EVENTS: tuple[Event, ...] = ("failure", "sla_miss")


class Notifier(Model):
    """Where run and task events are sent. Secrets (URLs, tokens, passwords) are ``${env:NAME}``."""

    kind: Literal["slack", "webhook", "email"]
    events: list[Event] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    """Which events to send: failure, retry, success, sla_miss."""
    url: str | None = None
    """slack: the incoming-webhook URL; webhook: the URL JSON is POSTed to."""
    headers: dict[str, str] = Field(default_factory=dict)
    """webhook: extra HTTP headers (e.g. ``Authorization: Bearer ${env:TOKEN}``)."""
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str | None = None
    to: list[str] = Field(default_factory=list)
    username: str | None = None
    password: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Notifier:
        if self.kind in ("slack", "webhook") and not self.url:
            raise ValueError(f"a {self.kind} notifier needs a `url`")
        if self.kind == "email" and not (self.smtp_host and self.sender and self.to):
            raise ValueError("an email notifier needs `smtp_host`, `sender` and `to`")
        return self


class OrchestrationConfig(Model):
    """How runs execute."""

    max_parallel: int = Field(default=2, ge=1)
    """Tasks run at once within a run."""
    max_active_runs: int = Field(default=1, ge=1)
    """Runs of the same pipeline at once, across processes (held by leases in the state database)."""
    when_busy: Literal["refuse", "wait"] = "refuse"
    """What a run does when every slot is taken: stop with an error, or wait for a slot."""
    lease_timeout: str = "2m"
    """A run's lease is taken over when its heartbeat is this old (its process died)."""
    max_fetches: int = Field(default=4, ge=1)
    """HTTP and Python sources of one ingest fetched at once."""
    task_timeout: str | None = None
    """A task attempt running longer than this fails (``30m``, ``2h``); none by default."""
    run_url: str | None = None
    """Link to a run in notifications, with ``{run_id}`` (e.g. ``http://lagoa.internal:8080/runs/{run_id}``)."""

    @field_validator("lease_timeout", "task_timeout")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value
