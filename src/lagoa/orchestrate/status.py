"""What ``lagoa status`` shows: for each pipeline and domain, its last run, its next scheduled run,
the freshness of its data against its schedule and SLA, the quality pass rate and quarantine
trend of its latest runs, and the lag of the CDC sources of its domains.

Everything is read from what runs left behind: the run history (the state database), the
validation results stored under the lake's ``quality/`` folder, the snapshot summaries of the
quarantine tables (each commit names its run), and the CDC sources' slots. Nothing is written.

Freshness: a scheduled pipeline is *fresh* while the end of the latest data interval it ran
successfully is at most one period (a day or an hour) plus its SLA old; without an SLA, the grace is
one more period (the bound the ``lagoa_table_*`` freshness gauges use). It is *stale* past that,
or when it has never succeeded, unless its first interval (``start``) is not due yet (*pending*).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from lagoa.core.config import PostgresSource
from lagoa.core.config.orchestration import INGEST_RUNS
from lagoa.core.errors import ConfigError, LagoaError
from lagoa.core.names import QUARANTINE_SUFFIX, RUN_ID
from lagoa.core.time import STEP, Unit, parse_duration, unit_of
from lagoa.orchestrate.schedule import next_tick

if TYPE_CHECKING:
    from lagoa.state import RunRecord, StateStore
    from lagoa.workspace import Workspace

Kind = Literal["pipeline", "domain", "runs"]
"""A configured pipeline, a domain (a pipeline of its own when scheduled), or a name found only in
the run history (``ingest``, ``all``, several domains run together)."""
FreshnessState = Literal["fresh", "stale", "pending", "unscheduled"]

TREND_RUNS = 5
"""Runs the quarantine trend and the quality pass rate look back over, by default."""
HISTORY = 500
"""Runs read from the history: the latest succeeded interval is searched among as many."""


@dataclass(frozen=True)
class LastRun:
    """A pipeline's newest run."""

    run_id: str
    state: str
    started_at: datetime
    ended_at: datetime | None
    interval_start: datetime | None
    interval_end: datetime | None
    error: str | None
    seconds: float | None
    """How long it took (None while it runs): a retried run's passes added up."""


@dataclass(frozen=True)
class Freshness:
    """How old a pipeline's data is against what its schedule and SLA allow."""

    state: FreshnessState
    data_until: datetime | None
    """The end of the latest data interval a run of the pipeline processed successfully."""
    allowed_seconds: float | None
    """How old ``data_until`` may be: one period plus the SLA (or a second period)."""
    stale_after: datetime | None
    """When the pipeline is (or was) stale without a newer successful run."""
    stale_seconds: float | None
    """By how much it is past ``stale_after`` (stale only)."""


@dataclass(frozen=True)
class QualityRate:
    """Expectations passed of those evaluated, in one run's stored validation results."""

    run_id: str
    passed: int
    evaluated: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None


@dataclass(frozen=True)
class Quarantined:
    """Rows one run sent to quarantine tables."""

    run_id: str
    rows: int


@dataclass(frozen=True)
class CdcLag:
    """A CDC source's slot as ``lagoa cdc status`` sees it, or why it could not be read."""

    source: str
    slot: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    retained_wal_bytes: int | None = None
    retained_bound_bytes: int | None = None
    """``max_retained_wal_mb``, in bytes."""
    error: str | None = None
    """The server could not be reached or cannot replicate, or the slot is missing."""

    @property
    def problem(self) -> str | None:
        if self.error is not None:
            return f"cdc source `{self.source}`: {self.error}"
        kept, bound = self.retained_wal_bytes, self.retained_bound_bytes
        if kept is not None and bound is not None and kept > bound:
            return (
                f"cdc source `{self.source}`: keeps {kept / 2**20:,.0f} MB of WAL, "
                f"past its bound of {bound / 2**20:,.0f} MB"
            )
        return None


@dataclass(frozen=True)
class PipelineStatus:
    """One pipeline (or domain) as ``lagoa status`` shows it."""

    name: str
    kind: Kind
    domains: tuple[str, ...]
    schedule: str | None
    sla: str | None
    last_run: LastRun | None
    next_run: datetime | None
    """The schedule's next tick (None when unscheduled)."""
    freshness: Freshness
    quality: QualityRate | None
    """The pass rate of the newest of the recent runs that stored validation results."""
    quarantine: tuple[Quarantined, ...]
    """Rows quarantined by each of the recent runs, oldest first."""
    cdc: tuple[str, ...]
    """The CDC sources of its domains (their lag: :attr:`ProjectStatus.cdc`)."""

    @property
    def problems(self) -> list[str]:
        found = []
        if self.last_run is not None and self.last_run.state == "failed":
            found.append(f"{self.name}: last run {self.last_run.run_id} failed")
        if self.freshness.state == "stale":
            if self.freshness.stale_seconds is None:
                found.append(f"{self.name}: stale, it never succeeded")
            else:
                found.append(f"{self.name}: stale by {duration(self.freshness.stale_seconds)}")
        return found


@dataclass(frozen=True)
class ProjectStatus:
    """Every pipeline and domain of a project at one moment, and its CDC sources."""

    project: str
    at: datetime
    pipelines: tuple[PipelineStatus, ...]
    cdc: tuple[CdcLag, ...]

    @property
    def problems(self) -> list[str]:
        """What makes ``lagoa status`` exit 1: failed last runs, stale pipelines, CDC sources
        that cannot be read or retain WAL past their bound."""
        found = [p for pipeline in self.pipelines for p in pipeline.problems]
        return found + [lag.problem for lag in self.cdc if lag.problem is not None]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON, times in ISO-8601 UTC."""

        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.astimezone(UTC).isoformat()
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if hasattr(value, "__dataclass_fields__"):
                fields = {name: plain(getattr(value, name)) for name in value.__dataclass_fields__}
                for extra in ("seconds", "rate", "problems", "problem"):
                    if hasattr(type(value), extra):
                        fields[extra] = plain(getattr(value, extra))
                return fields
            return value

        return {**plain(self), "ok": self.ok}


def project_status(
    workspace: Workspace,
    state: StateStore,
    now: datetime | None = None,
    *,
    names: Iterable[str] = (),
    runs: int = TREND_RUNS,
    cdc: bool = True,
) -> ProjectStatus:
    """The status of every pipeline and domain (or only ``names``) at ``now`` (default: the
    current time): what ``lagoa status`` prints. ``runs`` is how many recent runs the quarantine
    trend covers; ``cdc=False`` leaves the CDC sources' servers alone."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    history = state.runs(limit=HISTORY)
    by_pipeline: dict[str, list[RunRecord]] = {}
    for record in history:  # newest first
        by_pipeline.setdefault(record.pipeline, []).append(record)
    wanted = list(names)
    targets = [t for t in _targets(workspace, by_pipeline) if not wanted or t[0] in wanted]
    unknown = [n for n in wanted if n not in {t[0] for t in targets}]
    if unknown:
        raise ConfigError(
            f"no pipeline, domain or recorded run of `{unknown[0]}`",
            hint=f"known: {', '.join(t[0] for t in _targets(workspace, by_pipeline))}",
        )
    quarantined = _quarantined_by_run(workspace)
    stored = _stored_result_runs(workspace)
    statuses = []
    for name, kind in targets:
        statuses.append(
            _pipeline_status(workspace, name, kind, by_pipeline.get(name, []), now, runs, quarantined, stored)
        )
    sources = sorted({s for p in statuses for s in p.cdc}) if wanted else sorted(_cdc_sources(workspace))
    lags = tuple(_cdc_lag(workspace, source) for source in sources) if cdc else ()
    return ProjectStatus(workspace.config.name, now, tuple(statuses), lags)


def _targets(workspace: Workspace, history: dict[str, list[RunRecord]]) -> list[tuple[str, Kind]]:
    config = workspace.config
    found: list[tuple[str, Kind]] = [(name, "pipeline") for name in config.pipelines]
    found += [(name, "domain") for name in config.domains]
    known = {name for name, _ in found}
    found += [(name, "runs") for name in sorted(history) if name not in known]
    return found


def _domains_of(workspace: Workspace, name: str, runs: list[RunRecord]) -> tuple[str, ...]:
    config = workspace.config
    if name in config.pipelines:
        return tuple(config.pipelines[name].domains)
    if name in config.domains:
        return (name,)
    if name == "all":
        return tuple(config.domains)
    if runs:
        listed = runs[0].detail.get("domains")
        if isinstance(listed, list):
            return tuple(str(d) for d in listed if d in config.domains)
    return ()


def _schedule_of(
    workspace: Workspace, name: str
) -> tuple[str | None, Unit | None, datetime | None, str | None]:
    """The schedule, its interval unit, ``start`` and SLA of a pipeline or domain."""
    config = workspace.config
    scheduled = config.pipelines.get(name) or config.domains.get(name)
    if scheduled is None:
        return None, None, None, None
    unit = scheduled.interval or unit_of(scheduled.schedule)
    return scheduled.schedule, unit, scheduled.start, scheduled.sla


def _pipeline_status(
    workspace: Workspace,
    name: str,
    kind: Kind,
    runs: list[RunRecord],
    now: datetime,
    recent: int,
    quarantined: dict[str, int],
    stored: set[str],
) -> PipelineStatus:
    schedule, unit, start, sla = _schedule_of(workspace, name)
    last = runs[0] if runs else None
    last_run = (
        LastRun(
            last.run_id,
            last.state,
            last.started_at,
            last.ended_at,
            last.interval_start,
            last.interval_end,
            last.error,
            last.seconds,
        )
        if last is not None
        else None
    )
    ends = [r.interval_end for r in runs if r.state == "succeeded" and r.interval_end is not None]
    data_until = max(ends) if ends else None
    if schedule is None or unit is None:
        freshness = Freshness("unscheduled", data_until, None, None, None)
    else:
        period = STEP[unit].total_seconds()
        allowed = period + (parse_duration(sla) if sla else period)
        freshness = _freshness(data_until, start, allowed, now)
    latest = list(reversed(runs[:recent]))  # oldest first
    domains = _domains_of(workspace, name, runs)
    cdc = _cdc_sources(workspace)
    return PipelineStatus(
        name=name,
        kind=kind,
        domains=domains,
        schedule=schedule,
        sla=sla,
        last_run=last_run,
        next_run=next_tick(schedule, now) if schedule else None,
        freshness=freshness,
        quality=_quality(workspace, [r.run_id for r in runs[:recent]], stored),
        quarantine=tuple(Quarantined(r.run_id, quarantined.get(r.run_id, 0)) for r in latest),
        cdc=tuple(s for s in cdc if any(s in workspace.config.domains[d].sources for d in domains))
        if name != INGEST_RUNS
        else (),
    )


def _freshness(
    data_until: datetime | None, start: datetime | None, allowed: float, now: datetime
) -> Freshness:
    if data_until is None:
        # Before its first run, a pipeline with a `start` is as fresh as data up to `start` is.
        if start is not None and now <= (first := start + timedelta(seconds=allowed)):
            return Freshness("pending", None, allowed, first, None)
        return Freshness("stale", None, allowed, None, None)
    stale_after = data_until + timedelta(seconds=allowed)
    if now > stale_after:
        return Freshness("stale", data_until, allowed, stale_after, (now - stale_after).total_seconds())
    return Freshness("fresh", data_until, allowed, stale_after, None)


def _quarantined_by_run(workspace: Workspace) -> dict[str, int]:
    """Rows each run added to the lake's quarantine tables, from their snapshots' summaries (a
    snapshot expired since no longer counts)."""
    lake = workspace.lake
    found: dict[str, int] = {}
    for identifier in lake.identifiers():
        if not identifier.endswith(QUARANTINE_SUFFIX):
            continue
        table = lake.table(identifier)
        if table is None:
            continue
        for snapshot in table.metadata.snapshots:
            summary = snapshot.summary.additional_properties if snapshot.summary else {}
            run_id = summary.get(RUN_ID)
            if run_id:
                found[run_id] = found.get(run_id, 0) + int(summary.get("added-records", 0) or 0)
    return found


def _stored_result_runs(workspace: Workspace) -> set[str]:
    from lagoa.quality.results import run_ids

    return set(run_ids(workspace.storage))


def _quality(workspace: Workspace, run_ids: list[str], stored: set[str]) -> QualityRate | None:
    """The pass rate of the newest of ``run_ids`` (newest first) that stored results."""
    from lagoa.quality.results import load_results

    for run_id in run_ids:
        if run_id in stored:
            _, results = load_results(workspace.storage, run_id, stored)
            passed = sum(r.statistics.successful_expectations for r in results)
            evaluated = sum(r.statistics.evaluated_expectations for r in results)
            return QualityRate(run_id, passed, evaluated)
    return None


def _cdc_sources(workspace: Workspace) -> list[str]:
    return [
        name
        for name, source in workspace.config.sources.items()
        if isinstance(source, PostgresSource) and source.mode == "cdc"
    ]


def _cdc_lag(workspace: Workspace, name: str) -> CdcLag:
    """A CDC source's lag; a server that cannot be reached, or cannot replicate, is an error of
    the result, not of the status."""
    from lagoa.sources.cdc import Replicator

    config = workspace.config.sources[name]
    assert isinstance(config, PostgresSource)
    bound = config.max_retained_wal_mb * 1024 * 1024
    run_id = f"status-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    try:
        with Replicator(workspace, name, config, run_id=run_id) as replicator:
            found = replicator.status()
    except LagoaError as exc:
        return CdcLag(name, retained_bound_bytes=bound, error=workspace.redactor.text(str(exc)))
    if not found.exists:
        return CdcLag(
            name,
            found.slot,
            retained_bound_bytes=bound,
            error=f"slot {found.slot} is missing: run `lagoa cdc setup`",
        )
    return CdcLag(name, found.slot, found.lag_bytes, found.lag_seconds, found.retained_wal_bytes, bound, None)


def duration(seconds: float) -> str:
    """A duration for people, two units at most: ``45s``, ``12m``, ``3h 5m``, ``2d 4h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
