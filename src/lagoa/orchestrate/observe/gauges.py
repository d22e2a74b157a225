"""The gauges read when Prometheus scrapes rather than counted from events: they are then right
for what other processes did too (a commit from `lagoa run` seen by the scheduler's ``/metrics``).

Per table: when its current snapshot was committed, the newest value of its time column (from
the data files' column statistics: no data is read), the age its pipelines' schedules and SLAs
allow, and an incremental source's watermark. Per CDC source: the slot's lag, retained WAL and
confirmed position, read from Postgres.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily, Metric

from lagoa.core.config import PostgresSource, TableSource
from lagoa.core.config.sources import source_tables
from lagoa.core.names import CURSOR, QUARANTINE_SUFFIX
from lagoa.core.time import STEP, parse_duration, unit_of

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.workspace import Workspace

log = logging.getLogger("lagoa.metrics")

SLA_CACHE_SECONDS = 60
"""How long the tables' freshness bounds are kept (they change only when dbt's manifest does)."""


class LakeGauges:
    """Freshness and watermarks of the lake's tables (a prometheus_client custom collector)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._newest: dict[tuple[str, int], float | None] = {}
        self._bounds: tuple[float, dict[str, float]] | None = None

    def describe(self) -> list[Metric]:
        return []  # unknown until the lake is read; an empty description keeps registering cheap

    def collect(self) -> Iterator[Metric]:
        committed = GaugeMetricFamily(
            "lagoa_table_last_commit_timestamp_seconds",
            "When the table's current snapshot was committed.",
            labels=["table"],
        )
        newest = GaugeMetricFamily(
            "lagoa_table_newest_data_timestamp_seconds",
            "The greatest value of the table's time column (partition or ordering column).",
            labels=["table"],
        )
        bounds = GaugeMetricFamily(
            "lagoa_table_freshness_sla_seconds",
            "The age the table's last commit may reach: the interval of the pipeline writing it "
            "plus its SLA (one more interval without one).",
            labels=["table"],
        )
        watermark = GaugeMetricFamily(
            "lagoa_source_watermark",
            "An incremental source's committed watermark (a time as Unix seconds).",
            labels=["source"],
        )
        lake = self.workspace.lake
        try:
            allowed = self._freshness_bounds()
            for identifier in lake.identifiers():
                table = lake.table(identifier)
                snapshot = table.current_snapshot() if table is not None else None
                if table is None or snapshot is None:
                    continue
                committed.add_metric([identifier], snapshot.timestamp_ms / 1000)
                if identifier in allowed:
                    bounds.add_metric([identifier], allowed[identifier])
                key = (identifier, snapshot.snapshot_id)
                if key not in self._newest:
                    self._newest[key] = _newest_time(table, self._time_column(identifier, table))
                value = self._newest[key]
                if value is not None:
                    newest.add_metric([identifier], value)
                mark = _as_number(lake.latest(table, CURSOR)) if identifier.startswith("bronze.") else None
                if mark is not None:
                    watermark.add_metric([identifier.removeprefix("bronze.")], mark)
        except Exception as exc:  # the catalog is unreachable: the other metrics still serve
            log.warning("metrics: could not read the tables' snapshots: %s", exc)
        yield from (committed, newest, bounds, watermark)

    def _time_column(self, identifier: str, table: Table) -> str | None:
        """The source column of the first partition field on a date or time, else the ordering
        column of the source whose silver table this is."""
        schema = table.schema()
        for field in table.spec().fields:
            column = schema.find_field(field.source_id)
            if _is_time(column.field_type):
                return column.name
        for source, config in self.workspace.config.sources.items():
            if isinstance(config, TableSource) and config.ordering:
                for bronze, silver in source_tables(source, config):
                    if identifier in (f"bronze.{bronze}", f"silver.{silver}"):
                        return config.ordering
        return None

    def _freshness_bounds(self) -> dict[str, float]:
        now = time.monotonic()
        if self._bounds is None or now - self._bounds[0] > SLA_CACHE_SECONDS:
            self._bounds = (now, freshness_bounds(self.workspace))
        return self._bounds[1]


def freshness_bounds(workspace: Workspace) -> dict[str, float]:
    """Seconds each table's last commit may age, by table: for every scheduled pipeline, its
    interval plus the SLA of the domain (or pipeline) writing the table; the tightest wins."""
    from lagoa.orchestrate.graph import tagged_models
    from lagoa.publish.models import publishable

    config = workspace.config
    models = tagged_models(workspace)
    published = set(publishable(workspace))
    found: dict[str, float] = {}
    for pipeline in config.scheduled().values():
        step = STEP[pipeline.interval or unit_of(pipeline.schedule)].total_seconds()
        for domain in pipeline.domains:
            sla = config.domains[domain].sla or pipeline.sla
            allowed = step + (parse_duration(sla) if sla else step)
            tables = []
            for source in config.domains[domain].sources:
                for bronze, silver in source_tables(source, config.sources[source]):
                    tables += [f"bronze.{bronze}", f"silver.{silver}", f"silver.{silver}{QUARANTINE_SUFFIX}"]
            tables += [f"gold.{model}" for model in models.get(domain, []) if model in published]
            for table in tables:
                found[table] = min(allowed, found.get(table, allowed))
    return found


def _is_time(kind: Any) -> bool:
    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    return isinstance(kind, DateType | TimestampType | TimestamptzType)


def _newest_time(table: Table, column: str | None) -> float | None:
    """The greatest upper bound of ``column`` over the current snapshot's data files, in Unix
    seconds (an upper bound: rows deleted since may have held it)."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.types import DateType, TimestampType, TimestamptzType

    if column is None:
        return None
    field = table.schema().find_field(column)
    kind = field.field_type
    if not isinstance(kind, DateType | TimestampType | TimestamptzType):
        return None
    best: int | None = None
    for task in table.scan().plan_files():
        raw = (task.file.upper_bounds or {}).get(field.field_id)
        if raw is not None:
            value = int(from_bytes(kind, raw))
            best = value if best is None else max(best, value)
    if best is None:
        return None
    return best * 86400.0 if isinstance(kind, DateType) else best / 1_000_000


def _as_number(text: str | None) -> float | None:
    """A watermark as a number: a time as Unix seconds, a number as it is; None otherwise."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()  # times are UTC


class CdcGauges:
    """Each CDC source's slot as Postgres reports it, read at every scrape."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        from lagoa.sources.cdc import Replicator

        families = {
            "lag_bytes": GaugeMetricFamily(
                "lagoa_cdc_lag_bytes", "WAL written since the slot's confirmed position.", labels=["source"]
            ),
            "lag_seconds": GaugeMetricFamily(
                "lagoa_cdc_lag_seconds",
                "Age of the oldest transaction not yet applied (0 when none waits).",
                labels=["source"],
            ),
            "retained_wal_bytes": GaugeMetricFamily(
                "lagoa_cdc_retained_wal_bytes", "WAL Postgres keeps for the slot.", labels=["source"]
            ),
            "confirmed_lsn": GaugeMetricFamily(
                "lagoa_cdc_confirmed_lsn",
                "The slot's confirmed position (LSN as a number).",
                labels=["source"],
            ),
        }
        up = GaugeMetricFamily(
            "lagoa_cdc_up", "1 when the source's slot could be read, 0 otherwise.", labels=["source"]
        )
        for name, config in self.workspace.config.sources.items():
            if not (isinstance(config, PostgresSource) and config.mode == "cdc"):
                continue
            try:
                with Replicator(self.workspace, name, config, run_id="metrics") as replicator:
                    status = replicator.status()
            except Exception as exc:  # Postgres is down: say so, and serve the rest
                log.warning("metrics: CDC source %s: %s", name, self.workspace.redactor.text(str(exc)))
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1 if status.exists else 0)
            if status.exists:
                for field, family in families.items():
                    value = getattr(status, field)
                    if value is not None:
                        family.add_metric([name], float(value))
        yield from (*families.values(), up)
