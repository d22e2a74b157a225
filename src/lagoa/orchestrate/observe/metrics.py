"""Prometheus metrics of a process's runs, in a registry of its own (one per workspace, so that
two projects in one process, or two tests, never mix their counts).

Counters and histograms come from the runs' events; the tables' freshness is read from the lake
when Prometheus scrapes, so it is right even for commits another process made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from lagoa.core.names import QUARANTINE_SUFFIX
from lagoa.orchestrate.observe.observer import Attempt, RunInfo

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

log = logging.getLogger("lagoa.metrics")

RUN_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, float("inf"))
"""Seconds: runs and tasks take from a second to hours."""


class Metrics:
    """The registry and its metrics (a :class:`~lagoa.orchestrate.observe.observer.Sink`)."""

    def __init__(self, workspace: Workspace) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.runs = Counter("lagoa_runs", "Finished runs.", ["pipeline", "state"], registry=r)
        self.attempts = Counter(
            "lagoa_task_attempts",
            "Ended task attempts (skipped and cancelled tasks count as one).",
            ["pipeline", "task", "state"],
            registry=r,
        )
        self.run_seconds = Histogram(
            "lagoa_run_duration_seconds",
            "Duration of runs.",
            ["pipeline", "state"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.task_seconds = Histogram(
            "lagoa_task_duration_seconds",
            "Duration of task attempts.",
            ["pipeline", "task", "state"],
            buckets=RUN_BUCKETS,
            registry=r,
        )
        self.rows_written = Counter(
            "lagoa_rows_written", "Rows committed to a table (snapshot added-records).", ["table"], registry=r
        )
        self.rows_quarantined = Counter(
            "lagoa_rows_quarantined", "Rows committed to a table's quarantine.", ["table"], registry=r
        )
        self.sla_misses = Counter("lagoa_sla_misses", "Missed SLAs.", ["pipeline", "task"], registry=r)
        self.heartbeat = Gauge(
            "lagoa_scheduler_heartbeat_timestamp_seconds", "When the scheduler's loop last ran.", registry=r
        )
        r.register(_Freshness(workspace))

    def run_started(self, run: RunInfo, at: datetime) -> None:
        """Counted when it finishes."""

    def attempt_started(self, run: RunInfo, task: str) -> None:
        """Counted when it ends."""

    def attempt_ended(self, run: RunInfo, attempt: Attempt) -> None:
        self.attempts.labels(run.pipeline, attempt.task, attempt.state).inc()
        if attempt.seconds is not None:
            self.task_seconds.labels(run.pipeline, attempt.task, attempt.state).observe(attempt.seconds)
        for commit in attempt.commits:
            if commit.table.endswith(QUARANTINE_SUFFIX):
                self.rows_quarantined.labels(commit.table.removesuffix(QUARANTINE_SUFFIX)).inc(
                    commit.added_records
                )
            else:
                self.rows_written.labels(commit.table).inc(commit.added_records)

    def sla_missed(self, run: RunInfo, task: str | None) -> None:
        self.sla_misses.labels(run.pipeline, task or "").inc()

    def run_finished(self, run: RunInfo, state: str, seconds: float) -> None:
        self.runs.labels(run.pipeline, state).inc()
        self.run_seconds.labels(run.pipeline, state).observe(seconds)


class _Freshness:
    """``lagoa_table_last_commit_timestamp_seconds{table}``: the time of each table's current
    snapshot, read at scrape time."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def describe(self) -> list[Metric]:
        return []  # unknown until the lake is read; an empty description keeps registering cheap

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "lagoa_table_last_commit_timestamp_seconds",
            "When the table's current snapshot was committed.",
            labels=["table"],
        )
        lake = self.workspace.lake
        try:
            for identifier in lake.identifiers():
                table = lake.table(identifier)
                snapshot = table.current_snapshot() if table is not None else None
                if snapshot is not None:
                    gauge.add_metric([identifier], snapshot.timestamp_ms / 1000)
        except Exception as exc:  # the catalog is unreachable: the other metrics still serve
            log.warning("metrics: could not read the tables' snapshots: %s", exc)
        yield gauge
