"""Postgres sources, snapshot mode: every table copied from one exported snapshot, so the copy is
consistent across tables, streamed as Arrow through ADBC (the COPY protocol), tables in parallel.

Once every table is copied, per table, the rows are appended to ``bronze.<table>__changes`` with
``lagoa_op = 'r'`` (read from a snapshot) and the snapshot's WAL position in ``lagoa_lsn``;
``silver.<table>`` is then replaced by the snapshot in one commit, so rows deleted at the source
disappear from silver too. A table that fails to copy fails the copy before any commit.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lagoa.core.config import PostgresSource, dsn_secrets, redact, resolve_secrets, table_name
from lagoa.core.errors import ConfigError, SchemaEvolutionError, SourceError
from lagoa.core.names import ERROR_COLUMNS, LINEAGE, LSN, RELATION, RUN_ID
from lagoa.core.report import Reporter
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.lake.catalog import Lake
from lagoa.lake.schema import can_promote, iceberg_schema, iceberg_type, type_name

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

    from lagoa.workspace import Workspace

SESSION = (
    "SET TimeZone = 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'iso_8601'",
    "SET extra_float_digits = 3",
    "SET client_encoding = 'UTF8'",
)
"""Every connection that reads rows sets these, so that the copy and the change stream give a
value the same text form (and DuckDB parses it)."""
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
    oid: int = 0
    primary_key: bool = True
    """``key`` is the table's primary key (else it was declared under ``keys``)."""
    identity_columns: list[str] = field(default_factory=list)
    """The columns of the replica identity index (identity ``i``)."""
    nullable_key: list[str] = field(default_factory=list)
    """Key columns that may be NULL (only a declared key can have them)."""

    @property
    def qualified(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


@dataclass(frozen=True)
class SnapshotResult:
    """What :func:`snapshot` did."""

    tables: int
    """Tables copied."""
    rows: int
    """Rows copied: appended to bronze, and making up silver (which they replaced)."""


def snapshot(
    workspace: Workspace,
    name: str,
    config: PostgresSource,
    *,
    run_id: str,
    now: datetime,
    reporter: Reporter,
) -> SnapshotResult:
    """Copy every table of the source from one snapshot into bronze, then replace silver."""
    dsn, secrets = credentials(config)
    exporter = connect(dsn, name, secrets)
    try:
        exporter.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = exporter.execute(
            "SELECT pg_export_snapshot(), pg_current_wal_lsn() - '0/0'::pg_lsn, now()"
        ).fetchone()
        assert row is not None
        taken = Snapshot(str(row[0]), int(row[1]), row[2])
        tables = [describe(exporter, name, config, table) for table in table_names(exporter, name, config)]
        rows = copy_tables(
            workspace.lake,
            name,
            dsn,
            secrets,
            tables,
            taken,
            parallel=config.parallel,
            run_id=run_id,
            now=now,
            reporter=reporter,
        )
    finally:
        exporter.close()
    return SnapshotResult(len(tables), rows)


class LineReporter:
    """Reports a Postgres source's work to ``reporter`` as lines of the source (as ``lagoa ingest``
    draws them): each stage's message, and the rows of a table as ``copying orders: 1,200,000 of
    ~10,000,000 rows``, at most one line per table every ``every`` seconds."""

    def __init__(self, reporter: Reporter, source: str, every: float = 1.0) -> None:
        self.reporter = reporter
        self.source = source
        self.every = every
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def stage(self, item: str, message: str) -> None:
        self.reporter.stage(self.source, message)

    def rows(self, item: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(item, 0.0) < self.every:
                return
            self._last[item] = now
        of = f" of ~{total:,}" if total else ""
        self.reporter.stage(self.source, f"copying {item}: {done:,}{of} rows")


@dataclass(frozen=True)
class Snapshot:
    """An exported snapshot, the WAL position its rows are consistent with, and its time."""

    name: str
    lsn: int
    taken_at: datetime


def credentials(config: PostgresSource) -> tuple[str, list[str]]:
    """The resolved DSN and the secrets to keep out of messages (the DSN and its password)."""
    dsn = resolve_secrets(config.dsn)
    return dsn, sorted(dsn_secrets(dsn))


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
    lake: Lake,
    name: str,
    dsn: str,
    secrets: list[str],
    tables: list[SourceTable],
    taken: Snapshot,
    *,
    parallel: int,
    run_id: str,
    now: datetime,
    reporter: Reporter,
) -> int:
    """Copy the tables as of an exported snapshot (which must stay open until this returns):
    each streams once, into a change-log file and a mirror file. Only when every table is copied
    are they committed, table by table in the order given: ``bronze.<table>__changes`` (appended),
    then ``silver.<table>`` (replaced). So a table that fails to copy fails the copy before any
    commit, and the lake never holds some tables of the snapshot and not the others (unless a
    commit itself fails). Returns the rows copied. ``reporter.rows`` is told each table's rows so
    far (of its estimate), from the copying threads."""
    targets = {t.name: _Targets.prepare(lake, name, t, taken, run_id=run_id, now=now) for t in tables}
    copied: dict[str, int] = {}
    reporter.stage(name, f"copying {len(tables)} table(s) from snapshot {taken.name}")
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, min(len(tables), parallel)), thread_name_prefix="lagoa-pg"
        ) as pool:
            futures = {
                pool.submit(_copy, dsn, secrets, name, t, taken, targets[t.name], reporter): t for t in tables
            }
            try:
                for future in as_completed(futures):
                    copied[futures[future].name] = future.result()
            except BaseException:
                pool.shutdown(cancel_futures=True)  # the tables not started are not copied
                raise
        for table in tables:
            reporter.stage(name, f"committing {table.name}: {copied[table.name]:,} rows")
            targets[table.name].commit(lake, copied[table.name])
        return sum(copied.values())
    finally:
        for target in targets.values():
            target.discard()


@dataclass
class _Targets:
    """Where one table's copy is written: a file in a scratch folder of each lake table's data
    folder, until its commit."""

    bronze: Table
    silver: Table
    bronze_file: Path
    silver_file: Path
    constants: dict[str, Any]
    """The change-log columns every copied row has, and their values."""
    properties: dict[str, Any]
    """The snapshot summary of both commits."""

    @classmethod
    def prepare(
        cls, lake: Lake, source: str, table: SourceTable, taken: Snapshot, *, run_id: str, now: datetime
    ) -> _Targets:
        bronze, silver = lake_tables(
            lake,
            table,
            hint=f"drop `silver.{table.name}` and `bronze.{table.name}__changes` to copy the table afresh",
        )
        return cls(
            bronze,
            silver,
            _scratch_file(lake, bronze),
            _scratch_file(lake, silver),
            {
                "lagoa_op": "r",
                "lagoa_lsn": taken.lsn,
                "lagoa_committed_at": taken.taken_at,
                "_lagoa_batch_id": f"snapshot:{taken.lsn}",
                "_lagoa_ingested_at": now,
                "_lagoa_source": source,
            },
            {LSN: str(taken.lsn), RUN_ID: run_id, RELATION: str(table.oid)},
        )

    def commit(self, lake: Lake, rows: int) -> None:
        """Append the change-log file, then make the mirror exactly the copy, one commit each.
        Each file moves into the folder its :meth:`Lake.write` stages (deleted if refused)."""
        if rows:
            with lake.write(self.bronze, properties=self.properties) as staged:
                staged.add.append(_moved(lake, self.bronze_file, staged.folder))
        with lake.write(self.silver, properties=self.properties) as staged:
            staged.remove = lake.data_files(self.silver)
            if rows:
                staged.add.append(_moved(lake, self.silver_file, staged.folder))

    def discard(self) -> None:
        """Delete the scratch folders, with the files no commit took (a failed copy, or a commit
        not reached)."""
        for path in (self.bronze_file, self.silver_file):
            shutil.rmtree(path.parent, ignore_errors=True)


def _scratch_file(lake: Lake, table: Table) -> Path:
    """A local file to write one copy into: in a staging folder of the table's own data folder
    (moved into its commit's folder by a rename), or, for a lake on S3, in the local scratch."""
    if lake.storage.s3 is None:
        return Path(lake.staging_folder(table)) / "snapshot.parquet"
    folder = lake.storage.scratch() / f"snapshot-{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    return folder / "snapshot.parquet"


def _moved(lake: Lake, path: Path, folder: str) -> str:
    """Move a file into ``folder`` (the commit's staging folder); returns its new location."""
    target = f"{folder}/{path.name}"
    if lake.storage.s3 is None:
        os.replace(path, target)
    else:
        with path.open("rb") as stream:
            lake.storage.put_file(lake.key(target), stream)
        path.unlink()
    return target


def lake_tables(lake: Lake, table: SourceTable, *, hint: str) -> tuple[Table, Table]:
    """``bronze.<table>__changes`` and ``silver.<table>``, created or evolved to the source's
    columns (new ones added, safe type changes applied; any other change is an error)."""
    wanted = {c.name: c.lake_type for c in table.columns}
    return (
        _evolved(
            lake,
            f"bronze.{table.name}__changes",
            wanted | CHANGE_COLUMNS | dict(LINEAGE) | dict(ERROR_COLUMNS),
            hint,
        ),
        _evolved(lake, f"silver.{table.name}", wanted, hint),
    )


def _evolved(lake: Lake, identifier: str, columns: dict[str, str], hint: str) -> Table:
    table = lake.table(identifier)
    wanted = [(name, iceberg_type(t)) for name, t in columns.items()]
    if table is None:
        return lake.create_table(identifier, iceberg_schema(wanted))
    current = {f.name: type_name(f.field_type) for f in table.schema().fields}
    for name, lake_type in columns.items():
        if name in current and current[name] != lake_type and not can_promote(current[name], lake_type):
            raise SchemaEvolutionError(
                identifier,
                f"column `{name}` changed from {current[name]} to {lake_type} at the source, which "
                "Iceberg cannot change in place",
                hint=hint,
            )
    return lake.evolve(table, wanted)


def table_names(con: Any, source: str, config: PostgresSource) -> list[str]:
    """The tables the source lists, or else every table of its schema."""
    if config.tables:
        return config.tables
    found = [
        str(row[0])
        for row in con.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
            (config.schema_name,),
        ).fetchall()
    ]
    if not found:
        raise ConfigError(
            f"source `{source}`: schema `{config.schema_name}` has no tables",
            hint=f"list them under `sources.{source}.tables`, or check `sources.{source}.schema`",
        )
    for table in found:  # listed tables were checked when lagoa.yml was loaded
        try:
            table_name(table, f"table `{config.schema_name}.{table}`: its lake name")
        except ValueError as exc:
            raise ConfigError(
                f"source `{source}`: {exc}", hint=f"list the tables to copy under `sources.{source}.tables`"
            ) from None
    return found


def describe(
    con: Any, source: str, config: PostgresSource, table: str, *, generated: bool = True
) -> SourceTable:
    """The table's columns, key and replica identity. ``generated=False`` leaves out generated
    columns (logical replication does not send them)."""
    schema, _, bare = table.rpartition(".")
    schema = schema or config.schema_name
    found = con.execute(
        """
        SELECT a.attname, t.typname,
               CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) & 65535 END,
               CASE WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END,
               a.attnotnull, a.attgenerated <> ''
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
    oid, identity, estimate = con.execute(
        "SELECT oid::int8, relreplident, reltuples::int8 FROM pg_class "
        "WHERE oid = (quote_ident(%s) || '.' || quote_ident(%s))::regclass",
        (schema, bare),
    ).fetchone()

    def index_columns(condition: str) -> list[str]:
        return [
            str(r[0])
            for r in con.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s AND {condition} "
                "ORDER BY array_position(i.indkey, a.attnum)",
                (oid,),
            ).fetchall()
        ]

    primary = index_columns("i.indisprimary")
    declared = config.keys.get(bare, []) or config.keys.get(f"{schema}.{bare}", [])
    key = primary or declared
    if not key:
        raise ConfigError(
            f"source `{source}`: table `{schema}.{bare}` has no primary key, so its rows cannot be told apart",
            hint=f"add one (ALTER TABLE {schema}.{bare} ADD PRIMARY KEY (…)) or declare "
            f"`sources.{source}.keys.{bare}: [columns]`",
        )
    columns = [Column(str(r[0]), str(r[1]), r[2], r[3]) for r in found if generated or not r[5]]
    return SourceTable(
        schema,
        bare,
        columns,
        key,
        str(identity),
        int(estimate) if estimate >= 0 else None,
        oid=int(oid),
        primary_key=bool(primary),
        identity_columns=index_columns("i.indisreplident") if identity == "i" else [],
        nullable_key=[str(r[0]) for r in found if str(r[0]) in key and not r[4]],
    )


def _copy(
    dsn: str,
    secrets: list[str],
    source: str,
    table: SourceTable,
    taken: Snapshot,
    targets: _Targets,
    reporter: Reporter,
) -> int:
    """Stream one table, as of the snapshot, into its change-log and mirror files; returns the
    rows. Each Arrow batch from ADBC is cast to the lake's types and written to both files, by
    two threads, while the next batch is read. The change log is written with snappy (written
    once, read rarely), the mirror with zstd level 1, as everywhere else."""
    # Imported here, not with the module: replication applying changes starts without pyarrow.
    import adbc_driver_postgresql.dbapi as adbc
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    outputs = [
        (targets.bronze_file, schema_to_pyarrow(targets.bronze.schema()), "snappy", None),
        (targets.silver_file, schema_to_pyarrow(targets.silver.schema()), "zstd", 1),
    ]
    select = ", ".join(c.select for c in table.columns)
    rows = 0
    writers: list[pq.ParquetWriter] = []
    writing: list[Future[None]] = []
    try:
        with (
            adbc.connect(dsn) as connection,
            connection.cursor() as cursor,
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="lagoa-pg-write") as pool,
        ):
            for setting in SESSION:
                cursor.execute(setting)
            cursor.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cursor.execute(f"SET TRANSACTION SNAPSHOT {quote_literal(taken.name)}")
            cursor.execute(f"SELECT {select} FROM {table.qualified}")
            for batch in cursor.fetch_record_batch():
                if not writers:
                    writers = [
                        pq.ParquetWriter(
                            path,
                            schema,
                            compression=codec,
                            compression_level=level,
                            use_dictionary=_textual(schema),
                        )
                        for path, schema, codec, level in outputs
                    ]
                count = batch.num_rows
                given = {
                    name: _plain(column)
                    for name, column in zip(batch.schema.names, batch.columns, strict=True)
                }
                given["lagoa_seq"] = pa.array(np.arange(rows, rows + count, dtype=np.int64))
                shaped = [_shaped(given, schema, targets.constants, count) for _, schema, _, _ in outputs]
                for done in writing:  # the previous batch is written before this one starts
                    done.result()
                writing = [pool.submit(w.write_batch, b) for w, b in zip(writers, shaped, strict=True)]
                rows += count
                reporter.rows(table.name, rows, table.estimated_rows)
            for done in writing:
                done.result()
            cursor.execute("COMMIT")
    except (adbc.Error, _CastError) as exc:
        raise SourceError(
            source, f"copying `{table.schema}.{table.name}` failed: {redact(str(exc), secrets)}"
        ) from None
    finally:
        for writer in writers:
            writer.close()
    return rows


def _textual(schema: pa.Schema) -> list[str]:
    """The columns worth dictionary-encoding: text, often of few distinct values. Trying it on
    numbers and timestamps (mostly distinct) more than doubled the write time, measured here, and
    made files larger."""
    import pyarrow as pa

    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


class _CastError(Exception):
    """A copied value has no form in the column's lake type (numeric NaN as a decimal…)."""

    def __init__(self, column: str, lake_type: pa.DataType, detail: str) -> None:
        super().__init__(f"column `{column}` has a value that is not a {lake_type}: {detail}")


def _plain(column: pa.Array) -> pa.Array:
    """ADBC marks some columns with an extension type (numeric as text): read the storage."""
    import pyarrow as pa

    return column.cast(column.type.storage_type) if isinstance(column.type, pa.ExtensionType) else column


def _shaped(
    given: dict[str, pa.Array], schema: pa.Schema, constants: dict[str, Any], rows: int
) -> pa.RecordBatch:
    """A batch with exactly ``schema``'s columns: given ones cast, constants repeated, the rest NULL."""
    import pyarrow as pa

    arrays = []
    for column in schema:
        if column.name in given:
            try:
                arrays.append(given[column.name].cast(column.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise _CastError(column.name, column.type, str(exc)) from None
        elif column.name in constants:
            arrays.append(pa.repeat(pa.scalar(constants[column.name], column.type), rows))
        else:
            arrays.append(pa.nulls(rows, column.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
