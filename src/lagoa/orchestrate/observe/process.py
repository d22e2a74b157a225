"""What a process observes its runs with: one metrics registry and at most one StatsD client per
workspace, wired to each run's events, served at ``/metrics`` or pushed to a Pushgateway."""

from __future__ import annotations

import sys
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from lagoa.core.config import resolve_secrets
from lagoa.orchestrate.observe.metrics import Metrics
from lagoa.orchestrate.observe.observer import RunInfo, RunObserver, Sink
from lagoa.orchestrate.observe.statsd import StatsdClient, StatsdSink

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

PUSH_TIMEOUT = 10


@dataclass
class Observers:
    metrics: Metrics
    statsd: StatsdSink | None


_OBSERVERS: WeakKeyDictionary[Workspace, Observers] = WeakKeyDictionary()


def observers(workspace: Workspace) -> Observers:
    """The workspace's metrics and StatsD client, made on first use."""
    found = _OBSERVERS.get(workspace)
    if found is None:
        statsd = workspace.config.observe.statsd
        client = StatsdClient.of(statsd) if statsd else None
        found = Observers(Metrics(workspace), StatsdSink(client) if client else None)
        _OBSERVERS[workspace] = found
        if client is not None:  # the socket lives as long as the workspace
            weakref.finalize(workspace, client.close)
    return found


def observer(workspace: Workspace, pipeline: str, interval: tuple[datetime, datetime] | None) -> RunObserver:
    """A subscriber of one run's events, counting it in the workspace's metrics."""
    found = observers(workspace)
    sinks: list[Sink] = [found.metrics]
    if found.statsd is not None:
        sinks.append(found.statsd)
    return RunObserver(RunInfo(pipeline, f"{workspace.config.name}.{pipeline}", interval), sinks)


def heartbeat(workspace: Workspace) -> None:
    """The scheduler's loop is alive (``lagoa_scheduler_heartbeat_timestamp_seconds``,
    StatsD ``scheduler_heartbeat``)."""
    found = observers(workspace)
    found.metrics.heartbeat.set_to_current_time()
    if found.statsd is not None:
        found.statsd.heartbeat()


def serve(workspace: Workspace) -> tuple[str, int] | None:
    """Serve ``/metrics`` on ``observe.metrics.host:port`` from a background thread; the address
    it listens on, or None when no port is set."""
    from prometheus_client import start_http_server

    settings = workspace.config.observe.metrics
    if settings.port is None:
        return None
    server, _ = start_http_server(
        settings.port, settings.host, registry=observers(workspace).metrics.registry
    )
    return settings.host, int(server.server_address[1])


def push(workspace: Workspace, pipeline: str) -> None:
    """Push the metrics to ``observe.pushgateway`` (job ``lagoa``, grouped by pipeline), after a
    one-shot run; a failed push warns and does not fail the run."""
    from prometheus_client import push_to_gateway

    url = workspace.config.observe.pushgateway
    if url is None:
        return
    registry = observers(workspace).metrics.registry
    try:
        push_to_gateway(
            resolve_secrets(url),
            job="lagoa",
            registry=registry,
            grouping_key={"pipeline": pipeline},
            timeout=PUSH_TIMEOUT,
        )
    except Exception as exc:  # the gateway is down: the run's work is done all the same
        print(f"warning: pushing metrics failed: {workspace.redactor.text(str(exc))}", file=sys.stderr)
