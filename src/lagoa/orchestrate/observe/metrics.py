"""Prometheus metrics of a process's runs, in a registry of its own (one per workspace, so that
two projects in one process, or two tests, never mix their counts).

Counters and histograms come from the runs' events; the tables' freshness, the watermarks and the
CDC slots are read when Prometheus scrapes (see :mod:`.gauges`), so they are right even for what
another process did.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from lagoa.core.names import QUARANTINE_SUFFIX
from lagoa.orchestrate.observe.gauges import CdcGauges, LakeGauges
from lagoa.orchestrate.observe.observer import Attempt, RunInfo

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

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
        self.rows_read = Counter(
            "lagoa_source_rows_read", "Rows read from a source into its bronze table.", ["source"], registry=r
        )
        self.expectations = Counter(
            "lagoa_expectations",
            "Evaluated expectations, by how they went (passed, failed).",
            ["table", "suite", "expectation", "result"],
            registry=r,
        )
        self.sla_misses = Counter("lagoa_sla_misses", "Missed SLAs.", ["pipeline", "task"], registry=r)
        self.heartbeat = Gauge(
            "lagoa_scheduler_heartbeat_timestamp_seconds", "When the scheduler's loop last ran.", registry=r
        )
        r.register(LakeGauges(workspace))
        r.register(CdcGauges(workspace))

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
        for source, rows in attempt.reads:
            self.rows_read.labels(source).inc(rows)
        for validation in attempt.validations:
            for result in validation.results:
                outcome = "passed" if result.success else "failed"
                self.expectations.labels(
                    validation.table, validation.suite, result.expectation.label, outcome
                ).inc()

    def sla_missed(self, run: RunInfo, task: str | None) -> None:
        self.sla_misses.labels(run.pipeline, task or "").inc()

    def run_finished(self, run: RunInfo, state: str, seconds: float) -> None:
        self.runs.labels(run.pipeline, state).inc()
        self.run_seconds.labels(run.pipeline, state).observe(seconds)
