"""Apply a batch of row changes (inserts, updates, deletes, truncates) to a silver mirror.

The changes arrive in source order (``lagoa_lsn`` then ``lagoa_seq``). Per key only the last
change counts: a delete removes the key, anything else makes its row the key's row. As in
:mod:`lagoa.lake.merge`, the write is copy-on-write at file granularity: only the files holding a
changed key are read and rewritten, and one Iceberg commit swaps them. A truncate empties the
table first, so only the changes after it remain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.sql import list_literal, quote_identifier, quote_literal
from lagoa.lake.catalog import Lake
from lagoa.lake.pruning import files_for_keys
from lagoa.lake.writer import layout, write_parquet

if TYPE_CHECKING:
    from pyiceberg.table import Table

FINAL = "lagoa_mirror_final"


@dataclass(frozen=True)
class MirrorResult:
    upserted: int
    deleted: int
    rewritten_files: int
    truncated: bool


def apply_changes(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    table: Table,
    changes: str,
    key: list[str],
    *,
    unchanged: list[str],
    properties: dict[str, object],
) -> MirrorResult:
    """Apply ``changes`` (a relation with the table's columns and ``lagoa_op``, ``lagoa_lsn``,
    ``lagoa_seq``, ``lagoa_unchanged``) to ``table`` in one commit (see :meth:`Lake.write`: the
    files written are deleted if the write fails or the commit is refused). ``unchanged`` lists
    the columns some update left out (TOASTed values it did not touch): they keep their last value."""
    existing = lake.data_files(table)
    columns = [f.name for f in table.schema().fields]
    truncate = con.execute(
        f"SELECT lagoa_lsn, lagoa_seq FROM ({changes}) WHERE lagoa_op = 't' "
        "ORDER BY lagoa_lsn DESC, lagoa_seq DESC LIMIT 1"
    ).fetchone()
    removed: list[str] = []
    if truncate is not None:
        lsn, seq = truncate
        changes = (
            f"SELECT * FROM ({changes}) WHERE lagoa_lsn > {lsn} OR (lagoa_lsn = {lsn} AND lagoa_seq > {seq})"
        )
        removed, existing = existing, []
    if unchanged:
        changes = _fill_unchanged(changes, key, unchanged, existing)
    keys = ", ".join(quote_identifier(k) for k in key)
    match = " AND ".join(f"s.{quote_identifier(k)} = f.{quote_identifier(k)}" for k in key)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {FINAL} AS SELECT * FROM ({changes}) WHERE lagoa_op <> 't' "
        f"QUALIFY row_number() OVER (PARTITION BY {keys} ORDER BY lagoa_lsn DESC, lagoa_seq DESC) = 1"
    )
    with lake.write(table, properties=properties) as staged:
        try:
            counts = con.execute(
                f"SELECT count(*) FILTER (lagoa_op = 'd'), count(*) FILTER (lagoa_op <> 'd') FROM {FINAL}"
            ).fetchone()
            deleted, upserted = counts if counts else (0, 0)
            # After a truncate no file is kept; else only the files whose key range meets FINAL's.
            candidates = files_for_keys(con, lake, table, FINAL, key[0]) if existing else []
            rewritten = (
                [
                    row[0]
                    for row in con.execute(
                        f"SELECT DISTINCT s.filename FROM read_parquet({list_literal(candidates)}, "
                        f"filename=true, union_by_name=true) s SEMI JOIN {FINAL} f ON {match}"
                    ).fetchall()
                ]
                if candidates
                else []
            )
            projection = _projection(con, rewritten, table) if rewritten else ""
            kept = (
                f"SELECT {projection} FROM read_parquet({list_literal(rewritten)}, union_by_name=true) s "
                f"ANTI JOIN {FINAL} f ON {match} UNION ALL "
                if rewritten
                else ""
            )
            projection = ", ".join(_column(c, "f") for c in columns)
            select = f"{kept}SELECT {projection} FROM {FINAL} f WHERE lagoa_op <> 'd'"
            written = write_parquet(con, select, staged.folder, layout(table))
            staged.add, staged.remove = written.files, [*removed, *rewritten]
        finally:
            con.execute(f"DROP TABLE IF EXISTS {FINAL}")
    return MirrorResult(int(upserted), int(deleted), len(rewritten), truncate is not None)


def _column(name: str, alias: str) -> str:
    return f"{alias}.{quote_identifier(name)}"


def _projection(con: duckdb.DuckDBPyConnection, files: list[str], table: Table) -> str:
    """The table's columns as read from older files: columns added since read as NULL."""
    from lagoa.lake.schema import duckdb_type, type_name

    present = {
        str(row[0])
        for row in con.execute(
            f"DESCRIBE SELECT * FROM read_parquet({list_literal(files)}, union_by_name=true)"
        ).fetchall()
    }
    return ", ".join(
        _column(f.name, "s")
        if f.name in present
        else f"CAST(NULL AS {duckdb_type(type_name(f.field_type))}) AS {quote_identifier(f.name)}"
        for f in table.schema().fields
    )


def _fill_unchanged(changes: str, key: list[str], unchanged: list[str], existing: list[str]) -> str:
    """Give the values an update left out (and no earlier change of the batch carried) the
    mirror's value under the row's origin key, ``lagoa_origin_<i>``."""
    if not existing:
        return changes
    picked = ", ".join(
        [f"{quote_identifier(k)} AS _lagoa_key_{i}" for i, k in enumerate(key)]
        + [f"{quote_identifier(c)} AS _lagoa_mirror_{i}" for i, c in enumerate(unchanged)]
    )
    match = " AND ".join(f"m._lagoa_key_{i} = c.lagoa_origin_{i}" for i in range(len(key)))
    values = []
    for i, column in enumerate(unchanged):
        name = quote_identifier(column)
        flagged = f"list_contains(string_split(coalesce(lagoa_unchanged, ''), ','), {quote_literal(column)})"
        values.append(f"CASE WHEN {flagged} THEN _lagoa_mirror_{i} ELSE {name} END AS {name}")
    helpers = [f"_lagoa_key_{i}" for i in range(len(key))] + [
        f"_lagoa_mirror_{i}" for i in range(len(unchanged))
    ]
    joined = (
        f"SELECT * FROM ({changes}) c LEFT JOIN (SELECT {picked} FROM "
        f"read_parquet({list_literal(existing)}, union_by_name=true)) m ON {match}"
    )
    return f"SELECT * EXCLUDE ({', '.join(helpers)}) REPLACE ({', '.join(values)}) FROM ({joined})"
