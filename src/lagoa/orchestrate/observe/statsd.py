"""StatsD with Airflow's metric names, so that dashboards and statsd_exporter mappings made for
Airflow read Lagoa's runs: ``dagrun.duration.success.<dag_id>``, ``ti.finish.<dag_id>.<task>.<state>``…

The DAG id is the one of the pipeline's Airflow export (``<project>.<pipeline>``). Lines are
sent as the ``statsd`` package Airflow uses formats them (``name:1|c``, ``name:12.500000|ms``),
one UDP datagram each: a lost datagram loses one value, never the run.
"""

from __future__ import annotations

import logging
import re
import socket
from datetime import datetime

from lagoa.core.config.observe import StatsdConfig
from lagoa.core.names import QUARANTINE_SUFFIX
from lagoa.orchestrate.observe.observer import Attempt, RunInfo

log = logging.getLogger("lagoa.statsd")

MAX_LENGTH = 250
"""Airflow's limit on a name (``metrics_max_length``); longer names are dropped, as Airflow does."""
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.-]")
"""Airflow allows letters, digits, ``_``, ``.`` and ``-`` in a name."""

TI_STATES = {
    "succeeded": "success",
    "retrying": "up_for_retry",
    "failed": "failed",
    "timed_out": "failed",
}
"""Airflow's task-instance states for the end of an attempt."""


def stat_name(*parts: str) -> str | None:
    """``parts`` joined by dots, every character Airflow refuses replaced by ``_``; None when
    too long."""
    name = _NOT_ALLOWED.sub("_", ".".join(parts))
    return name if len(name) <= MAX_LENGTH else None


class StatsdClient:
    """Sends counters and timers over UDP to ``host:port``, every name after ``prefix.``."""

    def __init__(self, address: str, prefix: str) -> None:
        host, _, port = address.rpartition(":")
        self.target = (host or "127.0.0.1", int(port))
        self.prefix = prefix
        self._socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)

    @classmethod
    def of(cls, config: StatsdConfig) -> StatsdClient:
        return cls(config.address, config.prefix)

    def incr(self, *name: str, count: int = 1) -> None:
        self._send(name, f"{count}|c")

    def timing(self, *name: str, ms: float) -> None:
        self._send(name, f"{ms:0.6f}|ms")

    def _send(self, parts: tuple[str, ...], value: str) -> None:
        name = stat_name(*parts)
        if name is None:
            log.warning("statsd: name %s is longer than %d characters; not sent", ".".join(parts), MAX_LENGTH)
            return
        line = f"{self.prefix}.{name}:{value}" if self.prefix else f"{name}:{value}"
        try:
            self._socket.sendto(line.encode(), self.target)
        except OSError as exc:  # no server, or a full buffer: metrics must not fail a run
            log.warning("statsd: could not send to %s:%d: %s", *self.target, exc)

    def close(self) -> None:
        self._socket.close()


class StatsdSink:
    """A run's events as Airflow's metrics (a :class:`~lagoa.orchestrate.observe.observer.Sink`)."""

    def __init__(self, client: StatsdClient) -> None:
        self.client = client

    def run_started(self, run: RunInfo, at: datetime) -> None:
        if run.interval is not None:
            # Airflow: the run's start minus the end of its data interval.
            delay = (at - run.interval[1]).total_seconds() * 1000
            if delay >= 0:
                self.client.timing("dagrun", "schedule_delay", run.dag_id, ms=delay)

    def attempt_started(self, run: RunInfo, task: str) -> None:
        self.client.incr("ti", "start", run.dag_id, task)

    def attempt_ended(self, run: RunInfo, attempt: Attempt) -> None:
        state = TI_STATES.get(attempt.state)
        if state is None or attempt.seconds is None:  # never started: no task instance ran
            return
        self.client.incr("ti", "finish", run.dag_id, attempt.task, state)
        self.client.timing("dag", run.dag_id, attempt.task, "duration", ms=attempt.seconds * 1000)
        self.client.incr("ti_successes" if state == "success" else "ti_failures")
        for commit in attempt.commits:
            if not commit.table.endswith(QUARANTINE_SUFFIX):
                self.client.incr("lagoa", "rows_written", commit.table, count=commit.added_records)

    def sla_missed(self, run: RunInfo, task: str | None) -> None:
        """Not among the StatsD names; Prometheus counts the misses."""

    def run_finished(self, run: RunInfo, state: str, seconds: float) -> None:
        outcome = "success" if state == "succeeded" else "failed"
        self.client.timing("dagrun", "duration", outcome, run.dag_id, ms=seconds * 1000)

    def heartbeat(self) -> None:
        self.client.incr("scheduler_heartbeat")
