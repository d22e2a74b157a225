"""Publish a dbt model from the warehouse to ``gold.<model>``: an Iceberg table, partitioned, its
rows Z-ordered (or sorted) inside each partition, in files of bounded size.

Only partitions whose content changed are rewritten: each partition's rows are hashed on both
sides (the model and the gold table), and the partitions that differ are replaced in one commit
(their old files removed, the new ones added). A publish whose run id is already the table's
latest is a no-op, so retrying a run changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.config import PublishSettings
from lagoa.core.errors import LakeError, SchemaEvolutionError
from lagoa.core.names import RUN_ID
from lagoa.core.sql import list_literal, quote_identifier, quote_literal
from lagoa.engine.warehouse import warehouse_lock
from lagoa.lake.maintenance import PARTITIONING, SORT
from lagoa.lake.partitioning import PartitionField, partition_spec
from lagoa.lake.schema import can_promote, duckdb_type, from_duckdb, iceberg_schema, iceberg_type, type_name
from lagoa.lake.writer import layout, write_parquet
from lagoa.lake.zorder import file_layout

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.workspace import StageContext, Workspace

MODEL = "lagoa.model"


@dataclass(frozen=True)
class PublishResult:
    table: str
    rows: int
    """Rows written (those of the changed partitions)."""
    partitions: int
    """Partitions rewritten."""
    removed_files: int
    added_files: int
    skipped: bool = False


def publish(context: StageContext, model: str, settings: PublishSettings) -> PublishResult:
    """Publish ``main.<model>`` of the warehouse to ``gold.<model>``, as a commit of the run."""
    identifier = f"gold.{model}"
    workspace = context.workspace
    with warehouse_lock(workspace.warehouse.path):
        return _publish_locked(workspace, model, identifier, settings, context.run_id)


def _publish_locked(
    workspace: Workspace, model: str, identifier: str, settings: PublishSettings, run_id: str
) -> PublishResult:
    con = workspace.warehouse.memory()  # the model may be a view over silver's iceberg_scan views
    try:
        con.execute(f"ATTACH {quote_literal(str(workspace.warehouse.path))} AS warehouse (READ_ONLY)")
        con.execute("SET preserve_insertion_order = true")  # files keep the sort order
        return _publish(con, workspace, model, identifier, settings, run_id)
    except duckdb.Error as exc:
        raise LakeError(f"cannot publish `{model}` to {identifier}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _publish(
    con: duckdb.DuckDBPyConnection,
    workspace: Workspace,
    model: str,
    identifier: str,
    settings: PublishSettings,
    run_id: str,
) -> PublishResult:
    source = f"warehouse.main.{quote_identifier(model)}"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise LakeError(
            f"cannot publish `{model}`: {str(exc).splitlines()[0]}",
            hint="build it first (`lagoa transform`); only models in the warehouse's main schema publish",
        ) from None
    columns = [(name, from_duckdb(str(kind))) for name, kind, *_ in described]
    lake = workspace.lake
    table = lake.table(identifier)
    fields = [PartitionField.parse(text) for text in settings.partition_by]
    partitioning = json.dumps(settings.partition_by)
    if table is None:
        schema = iceberg_schema([(name, iceberg_type(kind)) for name, kind in columns])
        table = lake.create_table(identifier, schema, partition_spec(fields, schema) if fields else None)
        with table.transaction() as tx:
            tx.set_properties({PARTITIONING: partitioning})
        table = table.refresh()
    else:
        if table.metadata.properties.get(PARTITIONING, partitioning) != partitioning:
            raise LakeError(
                f"{identifier} is partitioned by {table.metadata.properties[PARTITIONING]}, "
                f"not {partitioning} as `{model}` now asks",
                hint=f"drop {identifier} to publish it with the new partitioning, or keep the old one",
            )
        _check_types(identifier, table, columns)
        table = lake.evolve(table, [(name, iceberg_type(kind)) for name, kind in columns])
    sort = json.dumps(
        {"zorder": settings.zorder, "sort_by": settings.sort_by, "rows_per_file": settings.rows_per_file}
    )
    if table.metadata.properties.get(SORT) != sort:  # `lagoa optimize` re-applies it
        with table.transaction() as tx:
            tx.set_properties({SORT: sort})
        table = table.refresh()
    if lake.latest(table, RUN_ID) == run_id:
        return PublishResult(identifier, 0, 0, 0, 0, skipped=True)

    # The model's rows in the table's types (sums of integers arrive as HUGEINT, for instance).
    typed = (
        "SELECT "
        + ", ".join(
            f"CAST({quote_identifier(name)} AS {duckdb_type(kind)}) AS {quote_identifier(name)}"
            for name, kind in columns
        )
        + f" FROM {source}"
    )
    keys = [f.duckdb_expression() for f in fields]
    key = "struct_pack(" + ", ".join(f"p{i} := {k}" for i, k in enumerate(keys)) + ")" if keys else "0"
    existing = lake.data_files(table)
    changed = _changed_partitions(con, typed, existing, key, columns)
    if not changed:  # nothing to commit: gold already holds exactly the model's rows
        return PublishResult(identifier, 0, 0, 0, 0)

    con.execute("CREATE OR REPLACE TEMP TABLE _lagoa_changed AS SELECT unnest($1) AS k", [changed])
    rows = f"SELECT * FROM ({typed}) WHERE {key} IN (SELECT k FROM _lagoa_changed)"
    rows, partitions, hidden = file_layout(
        rows, keys, settings.zorder, settings.sort_by, settings.rows_per_file
    )
    try:
        with lake.write(table, properties={RUN_ID: run_id, MODEL: model}) as staged:
            written = write_parquet(con, rows, staged.folder, layout(table), partitions, hidden)
            removed = _files_of(con, existing, key) if existing else []
            staged.add, staged.remove = written.files, removed
    finally:
        con.execute("DROP TABLE IF EXISTS _lagoa_changed")
    return PublishResult(identifier, written.rows, len(changed), len(removed), len(written.files))


def _check_types(identifier: str, table: Table, columns: list[tuple[str, str]]) -> None:
    """A model's column may keep its type or widen it; anything else would need a rebuild."""
    current = {f.name: type_name(f.field_type) for f in table.schema().fields}
    for name, kind in columns:
        if name in current and not can_promote(current[name], kind):
            raise SchemaEvolutionError(
                identifier,
                f"column `{name}` is {current[name]} in gold but {kind} in the model",
                hint=f"cast it back to {current[name]} in the model, or drop {identifier} to rebuild it",
            )


def _changed_partitions(
    con: duckdb.DuckDBPyConnection, typed: str, existing: list[str], key: str, columns: list[tuple[str, str]]
) -> list[object]:
    """Partition keys whose rows differ between the model and the gold table (added, changed or
    gone), found by comparing an order-independent hash of each partition's rows."""
    record = (
        "hash(struct_pack("
        + ", ".join(f"{quote_identifier(n)} := {quote_identifier(n)}" for n, _ in columns)
        + "))"
    )
    # A sum, not an xor: an xor cancels rows that appear twice.
    signature = (
        f"SELECT {key} AS k, sum(CAST({record} AS HUGEINT)) AS h, count(*) AS n FROM ({{rows}}) GROUP BY ALL"
    )
    new = signature.format(rows=typed)
    if not existing:
        return [row[0] for row in con.execute(f"SELECT k FROM ({new})").fetchall()]
    files = f"read_parquet({list_literal(existing)}, union_by_name=true)"
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {files}").fetchall()}
    # Columns the model gained since read as NULL from the older files.
    projection = ", ".join(
        quote_identifier(n) if n in present else f"CAST(NULL AS {duckdb_type(kind)}) AS {quote_identifier(n)}"
        for n, kind in columns
    )
    old = signature.format(rows=f"SELECT {projection} FROM {files}")
    differ = f"SELECT k FROM (({new}) EXCEPT ({old})) UNION SELECT k FROM (({old}) EXCEPT ({new}))"
    return [row[0] for row in con.execute(differ).fetchall()]


def _files_of(con: duckdb.DuckDBPyConnection, existing: list[str], key: str) -> list[str]:
    """The gold files holding any changed partition (each file holds one partition)."""
    rows = con.execute(
        f"SELECT DISTINCT filename FROM read_parquet({list_literal(existing)}, union_by_name=true, filename=true) "
        f"WHERE {key} IN (SELECT k FROM _lagoa_changed)"
    ).fetchall()
    return [row[0] for row in rows]
