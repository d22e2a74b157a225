"""Load new files of a source into ``bronze.<source>``: typed, with lineage, in one commit.

DuckDB parses each file and writes Parquet straight into the table's data folder (streaming,
all cores); the files are then added to the Iceberg table in a single commit whose summary lists
the batches (file hashes) it contains. Nothing is visible until that commit, and a re-run skips
every batch the table already lists.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from lagoa.config import FileSource
from lagoa.engine import quote_identifier, quote_literal
from lagoa.errors import SchemaEvolutionError, SourceError
from lagoa.lake.catalog import BATCHES, RUN_ID, Lake
from lagoa.lake.schema import can_promote, iceberg_type, reads_as, type_name
from lagoa.sources.files import SourceFile, land, landed_batches
from lagoa.sources.readers import READERS, RawRelation
from lagoa.sources.typing import infer_types, rejects_select, typed_select
from lagoa.storage import Storage

if TYPE_CHECKING:
    from pyiceberg.table import Table

CURSOR = "lagoa.cursor"
SOURCE_FILES = "lagoa.source-files"
LINEAGE = (
    ("_lagoa_batch_id", "string"),
    ("_lagoa_ingested_at", "timestamptz"),
    ("_lagoa_source", "string"),
)
ERROR_COLUMNS = (("_lagoa_error", "string"), ("_lagoa_raw", "string"))
SYSTEM_COLUMNS = {name for name, _ in LINEAGE + ERROR_COLUMNS}


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
    config: FileSource,
    existing: list[tuple[str, str]],
    relations: list[RawRelation],
    inferred: list[dict[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """The table's columns after this load, plus the columns to add and the types to widen."""
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
    final = {**columns, **widened, **added}
    return list(final.items()), list(added.items()), list(widened.items())


def _copy(con: duckdb.DuckDBPyConnection, select: str, target: Path, field_ids: dict[str, int]) -> int:
    ids = ", ".join(f"{quote_literal(name)}: {field_id}" for name, field_id in field_ids.items())
    result = con.execute(
        f"COPY ({select}) TO {quote_literal(str(target))} "
        f"(FORMAT parquet, COMPRESSION zstd, FIELD_IDS {{{ids}}}, FILE_SIZE_BYTES '512MB', "
        "FILENAME_PATTERN 'part-{uuid}', OVERWRITE_OR_IGNORE true)"
    ).fetchone()
    return int(result[0]) if result else 0


def load_bronze(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    storage: Storage,
    name: str,
    config: FileSource,
    files: list[SourceFile],
    *,
    run_id: str,
    ingested_at: datetime,
) -> BronzeResult:
    identifier = f"bronze.{name}"
    result = BronzeResult(identifier)
    table = lake.table(identifier)
    done = lake.committed(table)
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

    reader = READERS[config.format]
    relations = [reader(con, name, config, f.path, uuid.uuid4().hex[:12]) for f in pending.values()]
    for file, relation in zip(pending.values(), relations, strict=True):
        missing = [key for key in config.primary_key if key not in relation.select]
        if missing:
            found = ", ".join(c.name for c in relation.columns[:5])
            raise SourceError(
                name,
                f"file `{file.relative}` has no column {', '.join(missing)} (found: {found})",
                hint=f"check the header and the delimiter (`sources.{name}.csv.delimiter`)",
            )
    inferred = [
        infer_types(con, r, [c.name for c in r.columns if c.name not in config.columns and r.typed is False])
        for r in relations
    ]
    columns, added, widened = plan_schema(identifier, config, _table_columns(table), relations, inferred)
    table = _prepare_table(lake, identifier, table, columns, added, widened)
    schema_types = dict(_table_columns(table))
    columns = [(column, schema_types[column]) for column, _ in columns]
    field_ids = {f.name: f.field_id for f in table.schema().fields}

    cursor_filter = None
    watermark = lake.latest(table, CURSOR)
    if config.cursor and watermark is not None:
        cursor_type = schema_types[config.cursor]
        cursor_filter = f"{quote_identifier(config.cursor)} > TRY_CAST({quote_literal(watermark)} AS {_duck(cursor_type)})"

    staging = lake.staging_folder(table)
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
            try:
                result.rows += _copy(
                    con,
                    typed_select(relation, columns, lineage, cursor_filter),
                    staging / f"f{index}",
                    field_ids,
                )
                if relation.rejects_table:
                    result.rows += _copy(
                        con, rejects_select(relation, columns, lineage), staging / f"r{index}", field_ids
                    )
            except duckdb.Error as exc:
                raise SourceError(
                    name, f"file `{file.relative}` could not be read: {str(exc).splitlines()[0]}"
                ) from None
        landing_done.result()
    for file in pending.values():
        if not file.unchanged():
            raise SourceError(
                name, f"file `{file.relative}` changed while it was being ingested", transient=True
            )

    data_files = sorted(str(p) for p in staging.rglob("*.parquet"))
    properties: dict[str, object] = {
        BATCHES: sorted(pending),
        RUN_ID: run_id,
        SOURCE_FILES: {batch: f.relative for batch, f in pending.items()},
    }
    if config.cursor and data_files:
        column = quote_identifier(config.cursor)
        files_sql = "[" + ", ".join(quote_literal(p) for p in data_files) + "]"
        (high,) = con.execute(
            f"SELECT CAST(max({column}) AS VARCHAR) FROM read_parquet({files_sql})"
        ).fetchone() or (None,)
        if high is not None:
            properties[CURSOR] = high if watermark is None else max(high, watermark, key=_sortable)
    lake.commit(table, add=data_files, properties=properties)
    result.batches = sorted(pending)
    return result


def _sortable(value: str) -> tuple[float, str]:
    try:
        return (float(value), value)
    except ValueError:
        return (float("-inf"), value)


def _duck(type_name_: str) -> str:
    from lagoa.lake.schema import duckdb_type

    return duckdb_type(type_name_)


def _prepare_table(
    lake: Lake,
    identifier: str,
    table: Table | None,
    columns: list[tuple[str, str]],
    added: list[tuple[str, str]],
    widened: list[tuple[str, str]],
) -> Table:
    """Create the table or evolve its schema before any data file is written, so files carry the
    final field ids. A schema change alone adds no snapshot: harmless if the load then fails."""
    if table is None:
        from pyiceberg.schema import Schema
        from pyiceberg.types import NestedField

        fields = [*columns, *LINEAGE, *ERROR_COLUMNS]
        schema = Schema(
            *[NestedField(i + 1, n, iceberg_type(t), required=False) for i, (n, t) in enumerate(fields)]
        )
        return lake.create_table(identifier, schema)
    if added or widened:
        with table.update_schema() as update:
            for column, column_type in added:
                update.add_column(column, iceberg_type(column_type))
            for column, column_type in widened:
                update.update_column(column, field_type=iceberg_type(column_type))
        table = table.refresh()
    return table
