"""Ingest one source: discover files, land them raw, load bronze, merge silver."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from lagoa.config import FileSource
from lagoa.lake.merge import merge_silver
from lagoa.quality.gate import QualityGate
from lagoa.quality.results import save_result
from lagoa.sources.bronze import load_bronze
from lagoa.sources.files import discover

if TYPE_CHECKING:
    from lagoa.project import Project, SourceSummary


def ingest_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: FileSource,
    *,
    run_id: str,
    now: datetime,
    report: Callable[[str], None],
) -> SourceSummary:
    """Both halves of an ingest for one source: bronze, then validated silver."""
    summary = load_source(project, con, name, config, run_id=run_id, now=now, report=report)
    merge_source(project, con, name, config, summary, run_id=run_id, report=report)
    return summary


def load_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: FileSource,
    *,
    run_id: str,
    now: datetime,
    report: Callable[[str], None],
) -> SourceSummary:
    """The ``ingest`` step: discover the source's files, land them raw, load bronze."""
    from lagoa.project import SourceSummary

    summary = SourceSummary(name)
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


def merge_source(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: FileSource,
    summary: SourceSummary,
    *,
    run_id: str,
    report: Callable[[str], None],
) -> SourceSummary:
    """The ``validate`` step: run the table's suites on bronze's pending batches, then merge them
    into silver (and the quarantine)."""
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
