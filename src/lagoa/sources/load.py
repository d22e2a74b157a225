"""The sources stage's entry point, the ``ingest`` step of one source: discover its files (or
fetch its pages, or copy its Postgres tables), land them raw, and load bronze.

Postgres sources also write silver (a snapshot replaces it; CDC applies changes to it), so the
``validate`` step leaves them be.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import HttpSource, PostgresSource, PythonSource, Source, TableSource
from lagoa.sources.bronze import BronzeResult, load_bronze
from lagoa.sources.file_hashes import FileHashes
from lagoa.sources.files import content_hash, discover

if TYPE_CHECKING:
    from lagoa.sources.fetching import Fetched
    from lagoa.sources.files import SourceFile
    from lagoa.sources.http import FetchResult
    from lagoa.sources.readers import Reader
    from lagoa.workspace import StageContext


@dataclass(frozen=True)
class Loaded:
    """What the ingest step did for one source."""

    source: str
    files: int = 0
    """Files found (pages fetched, tables copied)."""
    skipped_files: list[str] = field(default_factory=list)
    """Files already landed, left alone."""
    bronze_rows: int = 0
    fetch: FetchResult | None = None
    """An HTTP or Python source's pages, records, retries and time spent waiting on the server."""
    silver_rows: int = 0
    """Postgres sources write silver themselves: rows copied or changes applied."""
    silver_total: int = 0


def load_source(
    context: StageContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: Source,
    *,
    prefetched: Future[Fetched] | None = None,
    required: Mapping[str, str] | None = None,
) -> Loaded:
    """Load one source into bronze. The context's interval templates HTTP requests;
    ``prefetched`` is a fetch started ahead (see :class:`lagoa.sources.fetching.Prefetch`);
    ``required`` names columns the data must have besides those of the settings (column: what
    names it, e.g. a suite's expectation), checked before anything lands."""
    if isinstance(config, PostgresSource):
        return _load_postgres(context, name, config)
    if isinstance(config, HttpSource | PythonSource):
        return _load_fetched(context, con, name, config, prefetched, required)
    report = context.reporter
    report.stage(name, "hashing files")
    root = context.workspace.root
    hashes = FileHashes(root / ".lagoa" / "hashes" / f"{name}.json", content_hash)
    files = discover(name, config.path, root, hashes)
    report.stage(name, "loading bronze")
    bronze = _bronze(context, con, name, config, files, required=required)
    return Loaded(name, len(files), bronze.skipped_files, bronze.rows)


def _load_postgres(context: StageContext, name: str, config: PostgresSource) -> Loaded:
    """A copy or the changes: each writes bronze and silver."""
    from lagoa.sources.postgres import LineReporter

    lines = LineReporter(context.reporter, name)
    if config.mode == "cdc":
        from lagoa.sources.cdc import sync

        synced = sync(context.workspace, name, config, run_id=context.run_id, reporter=lines)
        return Loaded(name, bronze_rows=synced.rows, silver_rows=synced.rows)
    from lagoa.sources.postgres import snapshot

    copied = snapshot(context.workspace, name, config, run_id=context.run_id, now=context.now, reporter=lines)
    return Loaded(
        name,
        copied.tables,
        bronze_rows=copied.rows,
        silver_rows=copied.rows,
        silver_total=copied.rows,
    )


def _load_fetched(
    context: StageContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: HttpSource | PythonSource,
    prefetched: Future[Fetched] | None,
    required: Mapping[str, str] | None,
) -> Loaded:
    """Fetch from the committed watermark on (HTTP pages or a Python generator), unless it was
    fetched ahead, then load what came as one batch: the new watermark is committed with the
    rows, so a failed or killed run never advances it."""
    from lagoa.sources.fetching import fetch_source
    from lagoa.sources.files import SourceFile

    report = context.reporter
    report.stage(name, "fetching")
    if prefetched is not None:
        fetched = prefetched.result()
    else:
        fetched = fetch_source(
            context.workspace, name, config, run_id=context.run_id, interval=context.interval
        )
    try:
        if fetched.result.records == 0:
            report.stage(name, "no new records")
            return Loaded(name, fetched.result.pages, fetch=fetched.result)
        target = fetched.target
        stat = target.stat()
        file = SourceFile(
            target, fetched.result.urls[0], stat.st_size, stat.st_mtime_ns, content_hash(target)
        )
        report.stage(name, "loading bronze")
        bronze = _bronze(context, con, name, config, [file], fetched.reader, required)
        return Loaded(name, fetched.result.pages, bronze_rows=bronze.rows, fetch=fetched.result)
    finally:
        fetched.target.unlink(missing_ok=True)


def _bronze(
    context: StageContext,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: TableSource,
    files: list[SourceFile],
    reader: Reader | None = None,
    required: Mapping[str, str] | None = None,
) -> BronzeResult:
    return load_bronze(
        con,
        context.lake,
        context.storage,
        name,
        config,
        files,
        run_id=context.run_id,
        ingested_at=context.now,
        reader=reader,
        required=required,
    )
