"""Merge pending bronze batches into ``silver.<entity>``, and parse failures into its quarantine.

Silver keeps the latest version of each primary key (greatest ``ordering`` value; on a tie, the
newer batch). The merge is copy-on-write at file granularity: DuckDB finds the silver files that
hold any incoming key, rewrites just those together with the new rows, and one Iceberg commit
swaps them. Untouched files (and so untouched partitions) are never read or rewritten.
pyiceberg's own ``upsert`` is far too slow for this (see DESIGN.md: 100k keys into 2M rows did
not finish in 10 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq

from lagoa.config import FileSource
from lagoa.engine import quote_identifier, quote_literal
from lagoa.lake.catalog import BATCHES, RUN_ID, Lake
from lagoa.lake.partitioning import PartitionField, partition_spec
from lagoa.lake.schema import iceberg_type, type_name
from lagoa.sources.bronze import ERROR_COLUMNS, LINEAGE

if TYPE_CHECKING:
    from pyiceberg.table import Table

QUARANTINE_COLUMNS = (
    ("_lagoa_reason", "string"),
    ("_lagoa_raw", "string"),
    ("_lagoa_batch_id", "string"),
    ("_lagoa_source", "string"),
    ("_lagoa_ingested_at", "timestamptz"),
    ("_lagoa_run_id", "string"),
)


@dataclass
class SilverResult:
    table: str
    batches: list[str]
    merged_rows: int
    quarantined_rows: int
    rewritten_files: int


def files_sql(paths: list[str]) -> str:
    return "[" + ", ".join(quote_literal(p) for p in paths) + "]"


def _non_empty(paths: list[Path]) -> list[str]:
    return [str(p) for p in paths if pq.read_metadata(p).num_rows > 0]


def _copy(
    con: duckdb.DuckDBPyConnection,
    select: str,
    target: Path,
    field_ids: dict[str, int],
    partitions: list[str],
) -> list[str]:
    ids = ", ".join(f"{quote_literal(name)}: {field_id}" for name, field_id in field_ids.items())
    options = [
        "FORMAT parquet",
        "COMPRESSION zstd",
        f"FIELD_IDS {{{ids}}}",
        "FILENAME_PATTERN 'part-{uuid}'",
        "OVERWRITE_OR_IGNORE true",
    ]
    if partitions:
        options.append(f"PARTITION_BY ({', '.join(f'_lagoa_p{i}' for i in range(len(partitions)))})")
        extra = ", ".join(f"{expr} AS _lagoa_p{i}" for i, expr in enumerate(partitions))
        select = f"SELECT *, {extra} FROM ({select})"
    else:
        options.append("FILE_SIZE_BYTES '512MB'")
    con.execute(f"COPY ({select}) TO {quote_literal(str(target))} ({', '.join(options)})")
    return _non_empty(sorted(target.rglob("*.parquet")))


def _silver_table(lake: Lake, identifier: str, bronze: Table, config: FileSource) -> Table:
    """Create silver from bronze's columns, or add the columns bronze has gained since."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    system = {name for name, _ in ERROR_COLUMNS}
    wanted = [(f.name, f.field_type) for f in bronze.schema().fields if f.name not in system]
    table = lake.table(identifier)
    if table is None:
        schema = Schema(*[NestedField(i + 1, n, t, required=False) for i, (n, t) in enumerate(wanted)])
        fields = [PartitionField.parse(text) for text in config.partition_by]
        return lake.create_table(identifier, schema, partition_spec(fields, schema) if fields else None)
    current = {f.name: f.field_type for f in table.schema().fields}
    changes = [(n, t) for n, t in wanted if n not in current or current[n] != t]
    if changes:
        with table.update_schema() as update:
            for name, field_type in changes:
                if name in current:
                    update.update_column(name, field_type=field_type)
                else:
                    update.add_column(name, field_type)
        table = table.refresh()
    return table


def _quarantine_table(lake: Lake, identifier: str) -> Table:
    table = lake.table(identifier)
    if table is not None:
        return table
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    schema = Schema(
        *[
            NestedField(i + 1, n, iceberg_type(t), required=False)
            for i, (n, t) in enumerate(QUARANTINE_COLUMNS)
        ]
    )
    return lake.create_table(identifier, schema)


def merge_silver(
    con: duckdb.DuckDBPyConnection, lake: Lake, name: str, config: FileSource, *, run_id: str
) -> SilverResult | None:
    """Merge every bronze batch that silver has not seen; None when there is nothing to do."""
    entity = config.entity or name
    identifier = f"silver.{entity}"
    quarantine_id = f"silver.{entity}__quarantine"
    bronze = lake.table(f"bronze.{name}")
    if bronze is None:
        return None
    silver = lake.table(identifier)
    pending = sorted(lake.committed(bronze) - lake.committed(silver))
    if not pending:
        return None

    from pyiceberg.expressions import In

    # pyiceberg's In has a __new__ that mypy reads wrongly; call it untyped.
    make_in: Any = In
    pending_filter = make_in("_lagoa_batch_id", pending)
    bronze_files = lake.data_files(bronze, pending_filter)
    batch_filter = f"_lagoa_batch_id IN ({', '.join(quote_literal(b) for b in pending)})"
    incoming = (
        f"(SELECT * FROM read_parquet({files_sql(bronze_files)}, union_by_name=true) WHERE {batch_filter})"
        if bronze_files
        else None
    )
    properties: dict[str, object] = {BATCHES: pending, RUN_ID: run_id}

    quarantined = 0
    quarantine = lake.table(quarantine_id)
    if incoming and set(pending) - lake.committed(quarantine):
        quarantine = _quarantine_table(lake, quarantine_id)
        staging = lake.staging_folder(quarantine)
        already = lake.committed(quarantine)
        skip = (
            f" AND _lagoa_batch_id NOT IN ({', '.join(quote_literal(b) for b in already)})" if already else ""
        )
        select = (
            "SELECT _lagoa_error AS _lagoa_reason, _lagoa_raw, _lagoa_batch_id, _lagoa_source, "
            f"_lagoa_ingested_at, {quote_literal(run_id)} AS _lagoa_run_id "
            f"FROM {incoming} WHERE _lagoa_error IS NOT NULL{skip}"
        )
        field_ids = {f.name: f.field_id for f in quarantine.schema().fields}
        added = _copy(con, select, staging / "q", field_ids, [])
        quarantined = sum(pq.read_metadata(p).num_rows for p in added)
        lake.commit(quarantine, add=added, properties=properties)

    silver = _silver_table(lake, identifier, bronze, config)
    columns = [f.name for f in silver.schema().fields]
    field_ids = {f.name: f.field_id for f in silver.schema().fields}
    projection = ", ".join(quote_identifier(c) for c in columns)
    partitions = [PartitionField.parse(text).duckdb_expression() for text in config.partition_by]
    staging = lake.staging_folder(silver)
    rewritten: list[str] = []

    if incoming is None:
        lake.commit(silver, properties=properties)
        return SilverResult(identifier, pending, 0, quarantined, 0)

    good = f"(SELECT {projection} FROM {incoming} WHERE _lagoa_error IS NULL)"
    if not config.primary_key:
        added = _copy(con, f"SELECT * FROM {good}", staging, field_ids, partitions)
        lake.commit(silver, add=added, properties=properties)
        return SilverResult(identifier, pending, _rows(added), quarantined, 0)

    keys = ", ".join(quote_identifier(k) for k in config.primary_key)
    order = [f"{quote_identifier(config.ordering)} DESC NULLS LAST"] if config.ordering else []
    latest = (
        f"SELECT {projection} FROM {good} QUALIFY row_number() OVER "
        f"(PARTITION BY {keys} ORDER BY {', '.join([*order, '_lagoa_ingested_at DESC', '_lagoa_batch_id DESC'])}) = 1"
    )
    existing = lake.data_files(silver)
    if not existing:
        added = _copy(con, latest, staging, field_ids, partitions)
        lake.commit(silver, add=added, properties=properties)
        return SilverResult(identifier, pending, _rows(added), quarantined, 0)

    # Stage the de-duplicated batch once: it is read to find affected files and to merge.
    batch_folder = staging.parent / f"{staging.name}-batch"
    con.execute(
        f"COPY ({latest}) TO {quote_literal(str(batch_folder))} (FORMAT parquet, PER_THREAD_OUTPUT true)"
    )
    batch = f"read_parquet({quote_literal(str(batch_folder / '*.parquet'))})"
    try:
        key_match = " AND ".join(
            f"s.{quote_identifier(k)} = b.{quote_identifier(k)}" for k in config.primary_key
        )
        rewritten = [
            row[0]
            for row in con.execute(
                f"SELECT DISTINCT s.filename FROM read_parquet({files_sql(existing)}, filename=true, union_by_name=true) s "
                f"SEMI JOIN {batch} b ON {key_match}"
            ).fetchall()
        ]
        sources = [f"SELECT {projection}, 1 AS _lagoa_new FROM {batch}"]
        if rewritten:
            sources.append(
                f"SELECT {projection}, 0 AS _lagoa_new FROM read_parquet({files_sql(rewritten)}, union_by_name=true)"
            )
        ordering = [*order, "_lagoa_new DESC"]
        merged = (
            f"SELECT {projection} FROM ({' UNION ALL BY NAME '.join(sources)}) "
            f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY {', '.join(ordering)}) = 1"
        )
        added = _copy(con, merged, staging, field_ids, partitions)
        (incoming_rows,) = con.execute(f"SELECT count(*) FROM {batch}").fetchone() or (0,)
    finally:
        for leftover in batch_folder.glob("*"):
            leftover.unlink()
        batch_folder.rmdir()
    lake.commit(silver, add=added, remove=rewritten, properties=properties)
    return SilverResult(identifier, pending, int(incoming_rows), quarantined, len(rewritten))


def _rows(paths: list[str]) -> int:
    return sum(pq.read_metadata(p).num_rows for p in paths)


def silver_columns(table: Table) -> list[tuple[str, str]]:
    return [(f.name, type_name(f.field_type)) for f in table.schema().fields]


__all__ = ["LINEAGE", "SilverResult", "merge_silver"]
