"""Load new files of a source into ``bronze.<source>``: typed, with lineage, in one commit.

DuckDB parses each file and writes Parquet straight into the table's data folder (streaming,
all cores); the files are then added to the Iceberg table in a single commit whose summary lists
the batches (file hashes) it contains. Nothing is visible until that commit, and a re-run skips
every batch the table already lists.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import FileSource, TableSource
from lagoa.core.errors import SchemaEvolutionError, SourceError
from lagoa.core.names import (
    BATCH_ORDER,
    BATCHES,
    CURSOR,
    ERROR_COLUMNS,
    LINEAGE,
    RUN_ID,
    SOURCE_FILES,
    SYSTEM_COLUMNS,
)
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.lake.catalog import Lake
from lagoa.lake.schema import can_promote, duckdb_type, iceberg_schema, iceberg_type, reads_as, type_name
from lagoa.lake.writer import layout, write_parquet
from lagoa.sources.files import SourceFile, land, landed_batches, remove_unfinished
from lagoa.sources.readers import READERS, RawRelation, Reader
from lagoa.sources.typing import infer_types, rejects_select, typed_select
from lagoa.storage import Storage

if TYPE_CHECKING:
    from pyiceberg.table import Table

FOUND_SHOWN = 30
"""Columns listed at most in an error about a missing column."""


@dataclass
class BronzeResult:
    """What one load into bronze did."""

    table: str
    batches: list[str] = field(default_factory=list)
    rows: int = 0
    skipped_files: list[str] = field(default_factory=list)
    """Files not loaded, each with the reason (already ingested, empty…)."""


def _table_columns(table: Table | None) -> list[tuple[str, str]]:
    if table is None:
        return []
    return [(f.name, type_name(f.field_type)) for f in table.schema().fields if f.name not in SYSTEM_COLUMNS]


def plan_schema(
    identifier: str,
    config: TableSource,
    existing: list[tuple[str, str]],
    relations: list[RawRelation],
    inferred: list[dict[str, str]],
) -> list[tuple[str, str]]:
    """The table's columns after this load: existing ones (some widened), then new ones."""
    columns = dict(existing)
    added: dict[str, str] = {}
    widened: dict[str, str] = {}
    for name, declared in config.columns.items():
        if name in columns and columns[name] != declared:
            if not can_promote(columns[name], declared):
                raise SchemaEvolutionError(
                    identifier,
                    f"column `{name}` is {columns[name]} and lagoa.yml now declares {declared}, "
                    "which Iceberg cannot change in place",
                    hint=f"keep `{name}: {columns[name]}`, or add a new column and migrate",
                )
            widened[name] = declared
    for relation, types in zip(relations, inferred, strict=True):
        for column in relation.columns:
            found = config.columns.get(column.name) or column.type or types.get(column.name, "string")
            current = widened.get(column.name) or added.get(column.name) or columns.get(column.name)
            if current is None:
                added[column.name] = found
            elif current == found or column.name in config.columns:
                continue
            elif can_promote(current, found) and relation.typed:
                widened[column.name] = found
            elif not reads_as(current, found):
                raise SchemaEvolutionError(
                    identifier,
                    f"column `{column.name}` is {current} but new data holds {found} values",
                    hint=f"declare `sources.<name>.columns.{column.name}: {current}` to quarantine "
                    "the values that do not fit, or load the data into a new source",
                )
    return list({**columns, **widened, **added}.items())


def _shown(columns: list[str]) -> str:
    """Column names for an error message, the first ``FOUND_SHOWN`` of them."""
    if not columns:
        return "none"
    return ", ".join(columns[:FOUND_SHOWN]) + (", …" if len(columns) > FOUND_SHOWN else "")


def load_bronze(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    storage: Storage,
    name: str,
    config: TableSource,
    files: list[SourceFile],
    *,
    run_id: str,
    ingested_at: datetime,
    reader: Reader | None = None,
    required: Mapping[str, str] | None = None,
) -> BronzeResult:
    """Append the files' rows to ``bronze.<name>`` in one commit. ``reader`` reads each file
    (default: the reader of the source's format); a file source's ``cursor`` skips rows at or
    below the watermark, while an HTTP source's records are all kept (silver merges them).
    Every column the settings or ``required`` (column: what names it) name must be in the data or
    the table, checked before anything lands."""
    identifier = f"bronze.{name}"
    result = BronzeResult(identifier)
    done = lake.ledger(identifier)  # no table load when every file is in it already
    pending: dict[str, SourceFile] = {}
    for file in files:
        if file.batch_id in done:
            result.skipped_files.append(f"{file.relative}: already ingested")
        elif file.batch_id in pending:
            result.skipped_files.append(f"{file.relative}: same content as {pending[file.batch_id].relative}")
        elif file.size == 0:
            result.skipped_files.append(f"{file.relative}: empty file")
        else:
            pending[file.batch_id] = file
    if not pending:
        return result
    table = lake.table(identifier)

    if reader is None:
        assert isinstance(config, FileSource), "only file sources have a format"
        reader = READERS[config.format]
    relations = [reader(con, name, config, f.path, uuid.uuid4().hex[:12]) for f in pending.values()]
    for file, relation in zip(pending.values(), relations, strict=True):
        missing = [key for key in config.primary_key if key not in relation.select]
        if missing:
            csv = isinstance(config, FileSource) and config.format == "csv"
            raise SourceError(
                name,
                f"file `{file.relative}` has no column {', '.join(missing)} "
                f"(found: {_shown([c.name for c in relation.columns])})",
                hint=f"check the header and the delimiter (`sources.{name}.csv.delimiter`)"
                if csv
                else f"check `sources.{name}.primary_key` against the fields found",
            )
    found = dict.fromkeys(column.name for relation in relations for column in relation.columns)
    config.check_columns(name, [*found, *(c for c, _ in _table_columns(table) if c not in found)], required)
    inferred = [
        infer_types(con, r, [c.name for c in r.columns if c.name not in config.columns and r.typed is False])
        for r in relations
    ]
    columns = plan_schema(identifier, config, _table_columns(table), relations, inferred)
    table = _prepare_table(lake, identifier, table, columns)
    schema_types = dict(_table_columns(table))
    columns = [(column, schema_types[column]) for column, _ in columns]
    files_layout = layout(table)

    cursor_filter = None
    watermark = lake.latest(table, CURSOR)
    if isinstance(config, FileSource) and config.cursor and watermark is not None:
        cursor_type = schema_types[config.cursor]
        cursor_filter = f"{quote_identifier(config.cursor)} > {_typed_literal(watermark, cursor_type)}"

    properties: dict[str, object] = {
        BATCHES: sorted(pending),
        RUN_ID: run_id,
        SOURCE_FILES: {batch: f.relative for batch, f in pending.items()},
        BATCH_ORDER: [f.batch_id for f in sorted(pending.values(), key=lambda f: (f.mtime_ns, f.relative))],
    }
    with lake.write(table, properties=properties) as staged:
        remove_unfinished(storage, name)
        landed = landed_batches(storage, name)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lagoa-land") as landing:
            # Raw landing copies bytes while DuckDB parses the same file: the copy costs no wall time.
            landing_done = landing.submit(
                lambda: [land(storage, name, f, ingested_at, landed) for f in pending.values()]
            )
            for index, (file, relation) in enumerate(zip(pending.values(), relations, strict=True)):
                lineage = {
                    "_lagoa_batch_id": quote_literal(file.batch_id),
                    "_lagoa_ingested_at": f"TIMESTAMPTZ {quote_literal(ingested_at.isoformat())}",
                    "_lagoa_source": quote_literal(file.relative),
                }
                selects = [typed_select(relation, columns, lineage, cursor_filter)]
                if relation.rejects_table:
                    selects.append(rejects_select(relation, columns, lineage))
                try:
                    for part, select in enumerate(selects):
                        written = write_parquet(con, select, f"{staged.folder}/{index}-{part}", files_layout)
                        result.rows += written.rows
                        staged.add += written.files
                except duckdb.Error as exc:
                    raise SourceError(
                        name, f"file `{file.relative}` {relation.unreadable}: {str(exc).splitlines()[0]}"
                    ) from None
            landing_done.result()
        for file in pending.values():
            if not file.unchanged():
                raise SourceError(
                    name, f"file `{file.relative}` changed while it was being ingested", transient=True
                )

        if config.cursor and staged.add:
            high = _cursor_high(con, staged.add, config.cursor, schema_types[config.cursor], watermark)
            if high is not None:
                staged.properties[CURSOR] = high
    result.batches = sorted(pending)
    return result


def _typed_literal(value: str, type_name_: str) -> str:
    return f"CAST({quote_literal(value)} AS {duckdb_type(type_name_)})"


def _cursor_high(
    con: duckdb.DuckDBPyConnection, files: list[str], cursor: str, cursor_type: str, watermark: str | None
) -> str | None:
    """The new watermark: the greatest cursor value committed so far, compared in its own type."""
    paths = "[" + ", ".join(quote_literal(p) for p in files) + "]"
    high = f"max({quote_identifier(cursor)})"
    if watermark is not None:
        high = f"greatest({high}, {_typed_literal(watermark, cursor_type)})"
    row = con.execute(f"SELECT CAST({high} AS VARCHAR) FROM read_parquet({paths})").fetchone()
    return row[0] if row else None


def _prepare_table(lake: Lake, identifier: str, table: Table | None, columns: list[tuple[str, str]]) -> Table:
    """Create or evolve the table before any data file is written, so files carry final field ids."""
    if table is None:
        fields = [*columns, *LINEAGE, *ERROR_COLUMNS]
        # Bronze is written once and replayable from raw: snappy writes faster than zstd (~10% of
        # a load measured here); silver and gold, read often, keep zstd's smaller files.
        schema = iceberg_schema([(n, iceberg_type(t)) for n, t in fields])
        return lake.create_table(identifier, schema, compression="snappy")
    return lake.evolve(table, [(n, iceberg_type(t)) for n, t in columns])
