"""Decoded changes into the lake, exactly once: per table, the changes are appended to
``bronze.<table>__changes`` and then applied to ``silver.<table>``, one Iceberg commit each with
the LSN where the flush's last transaction ended (``lagoa.lsn``). Each commit skips the changes at
or below the LSN its table already holds, so changes read again (after a crash between the commits
and the slot's advance) never land twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from lagoa.core.errors import SourceError
from lagoa.core.names import ERROR_COLUMNS, LSN, RELATION, RUN_ID
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.engine.connection import connect
from lagoa.lake.mirror import apply_changes
from lagoa.lake.schema import duckdb_type, type_name
from lagoa.lake.writer import layout, write_parquet
from lagoa.sources.cdc.decode import ChangeSet, Mirror
from lagoa.sources.cdc.lsn import format_lsn, held_lsn, table_lsn
from lagoa.sources.pgoutput import Begin
from lagoa.sources.postgres import SourceTable, lake_tables

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.workspace import Workspace


class Applier:
    """Writes the change sets of one source's flushes to its lake tables, through its own DuckDB
    connection (``close`` it)."""

    def __init__(self, workspace: Workspace, source: str, slot: str, run_id: str) -> None:
        self.workspace = workspace
        self.source = source
        self.slot = slot
        self.run_id = run_id
        self.duck = connect(extensions=(), s3=workspace.storage.s3)

    def close(self) -> None:
        self.duck.close()

    def held(self) -> Callable[[Mirror], int]:
        """The LSN a mirror's silver table holds (looked up once per call of this): its changes
        up to there are applied, so they are skipped (and so are not the ``origin`` of a value an
        update left out)."""
        known: dict[Mirror, int] = {}

        def lsn(mirror: Mirror) -> int:
            if mirror not in known:
                known[mirror] = held_lsn(self.workspace.lake, f"silver.{mirror.table.name}") or 0
            return known[mirror]

        return lsn

    def apply(self, mirror: Mirror, change_set: ChangeSet, begins: list[Begin], ends: list[int]) -> int:
        """Append one table's changes to its change log, then apply them to its mirror; each
        skips the changes its commits already hold. Returns the changes either took."""
        lake = self.workspace.lake
        table = mirror.table
        bronze, silver = lake_tables(
            lake,
            table,
            hint=f"copy the table again: `lagoa cdc resync {self.source} {table.name}` (its change log "
            "and mirror start afresh from a new snapshot)",
        )
        silver_lsn = table_lsn(lake, silver) or 0
        # Bronze is committed first, so it is never behind silver; after a snapshot it has no LSN.
        bronze_lsn = max(table_lsn(lake, bronze) or 0, silver_lsn)
        properties: dict[str, object] = {LSN: str(ends[-1]), RUN_ID: self.run_id, RELATION: str(table.oid)}
        relation = "lagoa_changes"  # tables are applied one at a time
        self.duck.register(relation, change_set.arrow(ends, begins))
        try:
            typed = _typed(relation, table, list(change_set.values), silver)
            bronze_rows = self._count(relation, bronze_lsn)
            if bronze_rows:
                select = f"SELECT {self._log_columns(bronze, ends[-1])} FROM ({typed}) WHERE lagoa_lsn > {bronze_lsn}"
                with lake.write(bronze, properties=properties) as staged:
                    staged.add = write_parquet(self.duck, select, staged.folder, layout(bronze)).files
            silver_rows = self._count(relation, silver_lsn)
            if silver_rows:
                apply_changes(
                    self.duck,
                    lake,
                    silver,
                    f"SELECT * FROM ({typed}) WHERE lagoa_lsn > {silver_lsn}",
                    table.key,
                    unchanged=sorted(change_set.unchanged_columns),
                    properties=properties,
                )
            return max(bronze_rows, silver_rows)
        except duckdb.Error as exc:  # a value with no form in the lake's type (a numeric NaN…)
            raise SourceError(
                self.source,
                f"applying changes to `{table.schema}.{table.name}` failed: {str(exc).splitlines()[0]}",
                hint="the change stays in the slot until it applies: fix the row at the source, then copy "
                f"the table again (`lagoa cdc resync {self.source} {table.name}`)",
            ) from None
        finally:
            self.duck.unregister(relation)

    def _log_columns(self, bronze: Table, lsn: int) -> str:
        """The change log's columns from the typed changes, with the lineage of this flush."""
        now = quote_literal(datetime.now(UTC).isoformat())
        lineage = {
            "_lagoa_batch_id": quote_literal(f"lsn:{format_lsn(lsn)}"),
            "_lagoa_ingested_at": f"CAST({now} AS TIMESTAMPTZ)",
            "_lagoa_source": quote_literal(f"{self.source}:{self.slot}"),
        }
        system = {name for name, _ in ERROR_COLUMNS} | set(lineage)
        return ", ".join(
            f"{lineage[f.name]} AS {quote_identifier(f.name)}"
            if f.name in lineage
            else _null(f.name, f.field_type)
            if f.name in system
            else quote_identifier(f.name)
            for f in bronze.schema().fields
        )

    def _count(self, relation: str, after: int) -> int:
        (count,) = self.duck.execute(
            f"SELECT count(*) FROM {relation} WHERE lagoa_lsn > {after}"
        ).fetchone() or (0,)
        return int(count)


def _typed(relation: str, table: SourceTable, given: list[str], silver: Table) -> str:
    """The changes with the lake's types: the columns Postgres sent, cast; the mirror's columns
    dropped at the source, NULL; the origin keys of left-out values, cast like the key."""
    types = {f.name: type_name(f.field_type) for f in silver.schema().fields}
    types |= {c.name: c.lake_type for c in table.columns}
    columns = [
        f"CAST({quote_identifier(n)} AS {duckdb_type(types.get(n, 'string'))}) AS {quote_identifier(n)}"
        for n in given
    ]
    columns += [_null(f.name, f.field_type) for f in silver.schema().fields if f.name not in given]
    columns += [
        f"CAST(lagoa_origin_{i} AS {duckdb_type(types[k])}) AS lagoa_origin_{i}"
        for i, k in enumerate(table.key)
    ]
    return (
        f"SELECT {', '.join(columns)}, lagoa_op, lagoa_lsn, lagoa_seq, lagoa_xid, lagoa_committed_at, "
        f"lagoa_unchanged FROM {relation}"
    )


def _null(name: str, field_type: Any) -> str:
    return f"CAST(NULL AS {duckdb_type(type_name(field_type))}) AS {quote_identifier(name)}"
