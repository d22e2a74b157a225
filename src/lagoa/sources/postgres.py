"""Postgres sources, snapshot mode: every table copied from one exported snapshot, so the copy is
consistent across tables, streamed as Arrow through ADBC (the COPY protocol), tables in parallel.

Per table, the rows are appended to ``bronze.<table>__changes`` with ``lagoa_op = 'r'`` (read
from a snapshot) and the snapshot's WAL position in ``lagoa_lsn``; ``silver.<table>`` is then
replaced by the snapshot in one commit, so rows deleted at the source disappear from silver too.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from lagoa.config import PostgresSource, TableSource, redact, resolve_secrets
from lagoa.engine import quote_identifier, quote_literal
from lagoa.errors import ConfigError, SourceError
from lagoa.lake.catalog import BATCHES, RUN_ID
from lagoa.lake.merge import files_sql
from lagoa.lake.schema import iceberg_schema, iceberg_type
from lagoa.lake.writer import layout, write_parquet
from lagoa.sources.bronze import load_bronze
from lagoa.sources.files import SourceFile, content_hash
from lagoa.sources.readers import READERS

if TYPE_CHECKING:
    from lagoa.project import Project, SourceSummary

Progress = Callable[["SourceTable", int], None]
"""Told the rows copied so far of a table, from the copying thread."""
LSN = "lagoa.lsn"
"""Snapshot summary key: the WAL position the committed rows are consistent with."""
CHANGE_COLUMNS = {
    "lagoa_op": "string",
    "lagoa_lsn": "long",
    "lagoa_seq": "long",
    "lagoa_xid": "long",
    "lagoa_committed_at": "timestamptz",
    "lagoa_unchanged": "string",
}
"""The change log's columns besides the row: what happened (``r`` read from a snapshot, ``c``
insert, ``u`` update, ``d`` delete, ``t`` truncate), the WAL position where its transaction
ended, its order within that transaction, the transaction id, when it committed, and the
columns an update left unchanged and Postgres did not send (TOASTed values, NULL in the log).
(Not ``_lagoa_…``: column names are normalised without a leading underscore.)"""
SIMPLE_TYPES = {
    "int2": "int",
    "int4": "int",
    "int8": "long",
    "float4": "float",
    "float8": "double",
    "bool": "boolean",
    "text": "string",
    "varchar": "string",
    "bpchar": "string",
    "name": "string",
    "date": "date",
    "time": "time",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
}
"""Postgres types Lagoa keeps as they are; anything else (json, uuid, arrays…) is copied as text."""


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str
    precision: int | None
    scale: int | None

    @property
    def lake_type(self) -> str:
        if self.pg_type == "numeric" and self.precision is not None and self.precision <= 38:
            return f"decimal({self.precision},{self.scale or 0})"
        return SIMPLE_TYPES.get(self.pg_type, "string")

    @property
    def select(self) -> str:
        """How the copy reads it: as itself, or cast to text."""
        column = quote_identifier(self.name)
        if self.pg_type in SIMPLE_TYPES:
            return column
        return f"{column}::text AS {column}"


@dataclass(frozen=True)
class SourceTable:
    schema: str
    name: str
    columns: list[Column]
    key: list[str]
    identity: str = "d"
    """Replica identity: ``d`` the primary key, ``f`` the full row, ``i`` an index, ``n`` nothing."""
    estimated_rows: int | None = None
    """Postgres's estimate (``pg_class.reltuples``), for progress bars; None before an ANALYZE."""

    @property
    def qualified(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


def snapshot(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    config: PostgresSource,
    summary: SourceSummary,
    *,
    run_id: str,
    now: datetime,
    report: Any,
) -> SourceSummary:
    """Copy every table of the source from one snapshot into bronze, then replace silver; in
    ``cdc`` mode, replicate the changes since the last run instead (setting up the slot first)."""
    if config.mode == "cdc":
        from lagoa.sources.cdc import sync

        return sync(project, con, name, config, summary, run_id=run_id, report=report)
    dsn, secrets = credentials(config)
    exporter = connect(dsn, name, secrets)
    try:
        exporter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = exporter.execute(
            "SELECT pg_export_snapshot(), pg_current_wal_lsn() - '0/0'::pg_lsn, now()"
        ).fetchone()
        assert row is not None
        taken = Snapshot(str(row[0]), int(row[1]), row[2])
        tables = [describe(exporter, name, config, table) for table in config.tables]
        rows = copy_tables(
            project,
            con,
            name,
            dsn,
            secrets,
            tables,
            taken,
            parallel=config.parallel,
            run_id=run_id,
            now=now,
            report=report,
            progress=reporting_progress(report),
        )
    finally:
        exporter.close()
    summary.bronze_rows += rows
    summary.silver_rows += rows
    summary.files += len(tables)
    summary.silver_total = summary.silver_rows
    return summary


def reporting_progress(report: Any, every: float = 1.0) -> Progress:
    """Progress as report lines (``copying orders: 1,200,000 of ~10,000,000 rows``), at most one
    per table every ``every`` seconds."""
    last: dict[str, float] = {}

    def tell(table: SourceTable, rows: int) -> None:
        now = time.monotonic()
        if now - last.get(table.name, 0.0) >= every:
            last[table.name] = now
            of = f" of ~{table.estimated_rows:,}" if table.estimated_rows else ""
            report(f"copying {table.name}: {rows:,}{of} rows")

    return tell


@dataclass(frozen=True)
class Snapshot:
    """An exported snapshot, the WAL position its rows are consistent with, and its time."""

    name: str
    lsn: int
    taken_at: datetime


def credentials(config: PostgresSource) -> tuple[str, list[str]]:
    """The resolved DSN and the secrets to keep out of messages (the DSN and its password)."""
    dsn = resolve_secrets(config.dsn)
    return dsn, [dsn, *(p for p in [urllib.parse.urlsplit(dsn).password] if p)]


def connect(dsn: str, source: str, secrets: list[str], **options: Any) -> Any:
    """A psycopg connection, or a SourceError that names the source but not the password."""
    import psycopg

    try:
        return psycopg.connect(dsn, **options)
    except psycopg.Error as exc:
        raise SourceError(
            source,
            f"cannot connect: {redact(str(exc).strip(), secrets)}",
            hint=f"check `sources.{source}.dsn`",
        ) from None


def copy_tables(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    name: str,
    dsn: str,
    secrets: list[str],
    tables: list[SourceTable],
    taken: Snapshot,
    *,
    parallel: int,
    run_id: str,
    now: datetime,
    report: Any,
    progress: Progress | None = None,
) -> int:
    """Copy the tables as of an exported snapshot (which must stay open until this returns) into
    bronze, then replace their silver tables; returns the rows copied. ``progress`` is called
    from the copying threads with each table and its rows so far."""
    folder = project.root / ".lagoa" / "fetch" / name
    folder.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    rows = 0
    try:
        report(f"copying {len(tables)} table(s) from snapshot {taken.name}")
        with ThreadPoolExecutor(
            max_workers=max(1, min(len(tables), parallel)), thread_name_prefix="lagoa-pg"
        ) as pool:
            futures = {
                t.name: pool.submit(
                    _copy, dsn, secrets, name, t, taken, folder / f"{t.name}.parquet", progress
                )
                for t in tables
            }
            for table_name, future in futures.items():
                staged[table_name] = future.result()
        for table in tables:
            report(f"loading {table.name}")
            rows += _load(project, con, table, staged[table.name], taken.lsn, run_id=run_id, now=now)
        return rows
    finally:
        for path in staged.values():
            path.unlink(missing_ok=True)


def describe(con: Any, source: str, config: PostgresSource, table: str) -> SourceTable:
    schema, _, bare = table.rpartition(".")
    schema = schema or config.schema_name
    found = con.execute(
        """
        SELECT a.attname, t.typname,
               CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) & 65535 END,
               CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, bare),
    ).fetchall()
    if not found:
        raise ConfigError(
            f"source `{source}`: no table `{schema}.{bare}`",
            hint=f"check `sources.{source}.tables` (and `schema`), and that the user may read it",
        )
    key = [
        str(r[0])
        for r in con.execute(
            """
            SELECT a.attname FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
            WHERE i.indrelid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass AND i.indisprimary
            ORDER BY array_position(i.indkey, a.attnum)
            """,
            (schema, bare),
        ).fetchall()
    ]
    key = key or config.keys.get(bare, []) or config.keys.get(f"{schema}.{bare}", [])
    if not key:
        raise ConfigError(
            f"source `{source}`: table `{schema}.{bare}` has no primary key, so its rows cannot be told apart",
            hint=f"add one (ALTER TABLE {schema}.{bare} ADD PRIMARY KEY (…)) or declare "
            f"`sources.{source}.keys.{bare}: [columns]`",
        )
    columns = [Column(str(r[0]), str(r[1]), r[2], r[3]) for r in found]
    identity, estimate = con.execute(
        "SELECT relreplident, reltuples::int8 FROM pg_class "
        "WHERE oid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass",
        (schema, bare),
    ).fetchone() or ("d", -1)
    return SourceTable(schema, bare, columns, key, str(identity), int(estimate) if estimate >= 0 else None)


def _copy(
    dsn: str,
    secrets: list[str],
    source: str,
    table: SourceTable,
    taken: Snapshot,
    target: Path,
    progress: Progress | None = None,
) -> Path:
    """Stream one table, as of the snapshot, into a Parquet file (with the change columns)."""
    import adbc_driver_postgresql.dbapi as adbc

    select = ", ".join(c.select for c in table.columns)
    try:
        with adbc.connect(dsn) as connection, connection.cursor() as cursor:
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT {quote_literal(taken.name)}")
            cursor.execute(f"SELECT {select} FROM {table.qualified}")
            reader = cursor.fetch_record_batch()
            writer: pq.ParquetWriter | None = None
            seq = 0
            try:
                for batch in reader:
                    rows = batch.num_rows
                    extra = [
                        pa.array(["r"] * rows, pa.string()),
                        pa.array([taken.lsn] * rows, pa.int64()),
                        pa.array(range(seq, seq + rows), pa.int64()),
                        pa.nulls(rows, pa.int64()),
                        pa.array([taken.taken_at] * rows, pa.timestamp("us", tz="UTC")),
                        pa.nulls(rows, pa.string()),
                    ]
                    seq += rows
                    plain = [
                        column.cast(column.type.storage_type)
                        if isinstance(column.type, pa.ExtensionType)
                        else column
                        for column in batch.columns
                    ]
                    out = pa.RecordBatch.from_arrays(
                        [*plain, *extra], names=[*batch.schema.names, *CHANGE_COLUMNS]
                    )
                    if writer is None:
                        writer = pq.ParquetWriter(target, out.schema)
                    writer.write_batch(out)
                    if progress is not None:
                        progress(table, seq)
            finally:
                if writer is not None:
                    writer.close()
            cursor.execute("COMMIT")
    except adbc.Error as exc:
        raise SourceError(
            source, f"copying `{table.schema}.{table.name}` failed: {redact(str(exc), secrets)}"
        ) from None
    if not target.exists():  # an empty table: an empty file with the columns
        names = [c.name for c in table.columns] + list(CHANGE_COLUMNS)
        pq.write_table(pa.table({n: pa.array([], pa.string()) for n in names}), target)
    return target


def _load(
    project: Project,
    con: duckdb.DuckDBPyConnection,
    table: SourceTable,
    staged: Path,
    lsn: int,
    *,
    run_id: str,
    now: datetime,
) -> int:
    """Append the copy to the change log, then make silver exactly the copy, in one commit each."""
    lake = project.lake
    declared = {c.name: c.lake_type for c in table.columns} | CHANGE_COLUMNS
    config = TableSource(columns=declared, primary_key=table.key)
    stat = staged.stat()
    file = SourceFile(
        staged, f"{table.schema}.{table.name}", stat.st_size, stat.st_mtime_ns, content_hash(staged)
    )
    bronze_name = f"{table.name}__changes"
    load_bronze(
        con,
        lake,
        project.storage,
        bronze_name,
        config,
        [file],
        run_id=run_id,
        ingested_at=now,
        reader=READERS["parquet"],
    )
    identifier = f"silver.{table.name}"
    wanted = [(c.name, iceberg_type(c.lake_type)) for c in table.columns]
    silver = lake.table(identifier)
    silver = (
        lake.evolve(silver, wanted)
        if silver is not None
        else lake.create_table(identifier, iceberg_schema(wanted))
    )
    bronze = lake.table(f"bronze.{bronze_name}")
    assert bronze is not None
    from pyiceberg.expressions import EqualTo

    # pyiceberg's EqualTo has a __new__ that mypy reads wrongly; call it untyped.
    equal: Any = EqualTo
    batch_files = lake.data_files(bronze, equal("_lagoa_batch_id", file.batch_id))
    columns = ", ".join(quote_identifier(c.name) for c in table.columns)
    select = (
        f"SELECT {columns} FROM read_parquet({files_sql(batch_files)}, union_by_name=true) "
        f"WHERE _lagoa_batch_id = {quote_literal(file.batch_id)} AND _lagoa_error IS NULL"
        if batch_files
        else f"SELECT {columns} FROM (SELECT {', '.join(f'NULL AS {quote_identifier(c.name)}' for c in table.columns)}) WHERE false"
    )
    written = write_parquet(con, select, lake.staging_folder(silver), layout(silver))
    old = lake.data_files(silver)
    lake.commit(
        silver,
        add=written.files,
        remove=old,
        properties={BATCHES: [file.batch_id], RUN_ID: run_id, LSN: str(lsn)},
    )
    return written.rows
