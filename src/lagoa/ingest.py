"""Ingest one source: discover files (or fetch pages), land them raw, load bronze, merge silver."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import HttpSource, PostgresSource, PythonSource, Source
from lagoa.lake.merge import merge_silver
from lagoa.quality.gate import QualityGate
from lagoa.quality.results import save_result
from lagoa.sources.bronze import load_bronze
from lagoa.sources.files import discover

if TYPE_CHECKING:
    from lagoa.project import Project, SourceSummary
    from lagoa.sources.fetching import Fetched


def ingest_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: Source,
    *,
    run_id: str,
    now: datetime,
    report: Callable[[str], None],
    interval: tuple[datetime, datetime] | None = None,
    prefetched: Future[Fetched] | None = None,
) -> SourceSummary:
    """Both halves of an ingest for one source: bronze, then validated silver."""
    summary = load_source(
        project,
        con,
        name,
        config,
        run_id=run_id,
        now=now,
        report=report,
        interval=interval,
        prefetched=prefetched,
    )
    merge_source(project, con, name, config, summary, run_id=run_id, report=report)
    return summary


def load_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: Source,
    *,
    run_id: str,
    now: datetime,
    report: Callable[[str], None],
    interval: tuple[datetime, datetime] | None = None,
    prefetched: Future[Fetched] | None = None,
) -> SourceSummary:
    """The ``ingest`` step: discover the source's files (or fetch its pages), land them raw, load
    bronze. ``interval`` is the run's data interval, for templated HTTP requests; ``prefetched``
    is a fetch started ahead (see :class:`lagoa.sources.fetching.Prefetch`)."""
    from lagoa.project import SourceSummary

    summary = SourceSummary(name)
    if isinstance(config, PostgresSource):  # a copy or the changes: each writes bronze and silver
        if config.mode == "cdc":
            from lagoa.sources.cdc import sync

            return sync(project, name, config, summary, run_id=run_id, report=report)
        from lagoa.sources.postgres import snapshot

        return snapshot(project, name, config, summary, run_id=run_id, now=now, report=report)
    if isinstance(config, HttpSource | PythonSource):
        return _load_fetched(
            project,
            con,
            name,
            config,
            summary,
            run_id=run_id,
            now=now,
            report=report,
            interval=interval,
            prefetched=prefetched,
        )
    report("hashing files")
    files = discover(name, config.path, project.root)
    summary.files = len(files)
    report("loading bronze")
    bronze = load_bronze(
        con, project.lake, project.storage, name, config, files, run_id=run_id, ingested_at=now
    )
    summary.skipped_files = bronze.skipped_files
    summary.bronze_rows = bronze.rows
    return summary


def _load_fetched(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: HttpSource | PythonSource,
    summary: SourceSummary,
    *,
    run_id: str,
    now: datetime,
    report: Callable[[str], None],
    interval: tuple[datetime, datetime] | None,
    prefetched: Future[Fetched] | None,
) -> SourceSummary:
    """Fetch from the committed watermark on (HTTP pages or a Python generator), unless it was
    fetched ahead, then load what came as one batch: the new watermark is committed with the
    rows, so a failed or killed run never advances it."""
    from lagoa.sources.fetching import fetch_source
    from lagoa.sources.files import SourceFile, content_hash

    report("fetching")
    if prefetched is not None:
        fetched = prefetched.result()
    else:
        fetched = fetch_source(project, name, config, run_id=run_id, interval=interval)
    try:
        summary.files = fetched.result.pages
        summary.fetch = fetched.result
        if fetched.result.records == 0:
            report("no new records")
            return summary
        target = fetched.target
        stat = target.stat()
        file = SourceFile(
            target, fetched.result.urls[0], stat.st_size, stat.st_mtime_ns, content_hash(target)
        )
        report("loading bronze")
        bronze = load_bronze(
            con,
            project.lake,
            project.storage,
            name,
            config,
            [file],
            run_id=run_id,
            ingested_at=now,
            reader=fetched.reader,
        )
        summary.bronze_rows = bronze.rows
        return summary
    finally:
        fetched.target.unlink(missing_ok=True)


def merge_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: Source,
    summary: SourceSummary,
    *,
    run_id: str,
    report: Callable[[str], None],
) -> SourceSummary:
    """The ``validate`` step: run the table's suites on bronze's pending batches, then merge them
    into silver (and the quarantine). A Postgres copy replaced silver already."""
    if isinstance(config, PostgresSource):
        return summary
    identifier = f"silver.{config.entity or name}"
    suites = project.suites_for(identifier)
    gate = None
    if suites:
        gate = QualityGate(
            suites,
            identifier,
            run_id,
            project.config.quality.result_format,
            save=lambda result: save_result(project.storage, result),
        )
    report("validating and merging silver" if suites else "merging silver")
    silver = merge_silver(con, project.lake, name, config, run_id=run_id, gate=gate)
    if silver is not None:
        summary.silver_rows = silver.merged_rows
        summary.quarantined = silver.quarantined_rows
        summary.failed_checks = silver.dropped_rows
        summary.warnings = silver.warnings
    table = project.lake.table(identifier)
    if table is not None:
        summary.silver_total = project.lake.describe(table).rows
    report("done")
    return summary
