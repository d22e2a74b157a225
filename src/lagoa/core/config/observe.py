"""The ``observe`` section: where a project's metrics, StatsD events, lineage events and logs go."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lagoa.core.config.base import Model


class MetricsConfig(Model):
    """Prometheus metrics, served at ``/metrics`` by the long-running commands."""

    port: int | None = Field(default=None, ge=0, le=65535)
    """Port of ``/metrics`` for ``lagoa scheduler``, ``lagoa cdc run --follow`` and ``lagoa serve``
    (none: not served; 0: any free port)."""
    host: str = "127.0.0.1"


class StatsdConfig(Model):
    """StatsD, with Airflow's metric names (``dagrun.duration.success.<pipeline>``, …)."""

    address: str
    """``host:port`` of the StatsD server (UDP)."""
    prefix: str = "airflow"
    """Put before every name, as Airflow's ``[metrics] statsd_prefix``."""


class LineageConfig(Model):
    """OpenLineage events for every task attempt (the standard ``OPENLINEAGE_*`` variables
    configure the same when this is not set)."""

    transport: Literal["console", "file", "http"] | None = None
    url: str | None = None
    """http: the server's URL (a Marquez-compatible ``/api/v1/lineage`` endpoint)."""
    api_key: str | None = None
    """http: a bearer token, as a secret reference (``${env:NAME}``, ``${aws-secret:…}``)."""
    path: str | None = None
    """file: where to append the events, one JSON object per line."""
    namespace: str | None = None
    """The jobs' namespace (default: ``OPENLINEAGE_NAMESPACE``, then the project's name)."""


class ObserveConfig(Model):
    """Observability: metrics, StatsD, lineage, logs."""

    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    pushgateway: str | None = None
    """URL of a Prometheus Pushgateway, pushed to after a one-shot ``lagoa run``/``ingest``."""
    statsd: StatsdConfig | None = None
    lineage: LineageConfig = Field(default_factory=LineageConfig)
    log_format: Literal["text", "json"] = "text"
    """``json``: one JSON object per log line (``--log-format`` overrides it)."""
