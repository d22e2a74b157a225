"""Ingest one source: discover files, land them raw, load bronze, merge silver."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from lagoa.config import FileSource
from lagoa.lake.merge import merge_silver
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
    report("merging silver")
    silver = merge_silver(con, project.lake, name, config, run_id=run_id)
    if silver is not None:
        summary.silver_rows = silver.merged_rows
        summary.quarantined = silver.quarantined_rows
    table = project.lake.table(f"silver.{config.entity or name}")
    if table is not None:
        summary.silver_total = project.lake.describe(table).rows
    report("done")
    return summary
