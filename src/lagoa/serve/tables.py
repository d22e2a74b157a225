"""The lake's tables as the server shows them: a list, one table's schema, partitioning, sort
order, snapshots and files, a preview of its rows, and its quarantine.

A project may hold hundreds of tables, so the catalog is read once per request as one list of
metadata locations (one query of a SQL catalog) and a table is loaded again only when its
location changed: :class:`TableCache` keeps the rest.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from lagoa.core.names import BATCHES, CURSOR, LSN, QUARANTINE_SUFFIX, RUN_ID
from lagoa.core.sql import quote_literal
from lagoa.lake.catalog import local_path
from lagoa.lake.maintenance import PARTITIONING, SORT
from lagoa.serve.console import json_cell

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.orchestrate.project import Project

PREVIEW_ROWS = 50
MAX_ROWS = 500
SECRET_WORDS = ("secret", "password", "token", "key", "credential")
"""A table property whose name holds one of these is shown without its value."""


class TableCache:
    """Tables loaded from the catalog, kept while their metadata location stays the same."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._tables: dict[str, tuple[str | None, Table]] = {}
        self._lock = threading.Lock()
        self._engine: duckdb.DuckDBPyConnection | None = None

    def engine(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection of its own for one request (close it), sharing one in-memory
        database whose extensions are loaded once: a new database would load them every time."""
        with self._lock:
            if self._engine is None:
                self._engine = self.project.warehouse.memory()
            return self._engine.cursor()

    def locations(self) -> dict[str, str | None]:
        return self.project.lake.metadata_locations()

    def get(self, identifier: str, location: str | None = None, *, known: bool = False) -> Table | None:
        """The table as its current metadata says (None when there is no such table)."""
        if not known:
            locations = self.locations()
            if identifier not in locations:
                return None
            location = locations[identifier]
        with self._lock:
            kept = self._tables.get(identifier)
        if kept is not None and kept[0] == location and location is not None:
            return kept[1]
        table = self.project.lake.table(identifier)
        if table is not None:
            with self._lock:
                self._tables[identifier] = (table.metadata_location, table)
        return table

    def all(self) -> list[tuple[str, Table]]:
        found = []
        for identifier, location in sorted(self.locations().items()):
            table = self.get(identifier, location, known=True)
            if table is not None:
                found.append((identifier, table))
        return found


@dataclass(frozen=True)
class TableSummary:
    identifier: str
    namespace: str
    rows: int
    files: int
    bytes: int
    snapshots: int
    last_commit: str | None
    """When the current snapshot was committed (ISO-8601, UTC)."""
    last_run: str | None
    partitioned: bool
    quarantine: bool
    """Whether ``<identifier>__quarantine`` exists."""


def _when(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def summaries(cache: TableCache) -> list[TableSummary]:
    tables = cache.all()
    names = {identifier for identifier, _ in tables}
    found = []
    for identifier, table in tables:
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        found.append(
            TableSummary(
                identifier=identifier,
                namespace=identifier.split(".", 1)[0],
                rows=int(summary.get("total-records", 0)),
                files=int(summary.get("total-data-files", 0)),
                bytes=int(summary.get("total-files-size", 0)),
                snapshots=len(table.metadata.snapshots),
                last_commit=_when(snapshot.timestamp_ms) if snapshot else None,
                last_run=summary.get(RUN_ID),
                partitioned=bool(table.spec().fields),
                quarantine=f"{identifier}{QUARANTINE_SUFFIX}" in names,
            )
        )
    return found


def _shown(key: str, value: str) -> str:
    return "(hidden)" if any(word in key.lower() for word in SECRET_WORDS) else value


def detail(cache: TableCache, identifier: str) -> dict[str, Any] | None:
    """Schema, partition spec, sort order or Z-order, properties and snapshots (newest first)."""
    table = cache.get(identifier)
    if table is None:
        return None
    schema = table.schema()
    fields = [
        {
            "id": f.field_id,
            "name": f.name,
            "type": str(f.field_type),
            "required": f.required,
            "doc": f.doc,
        }
        for f in schema.fields
    ]
    spec = [
        {
            "name": p.name,
            "source": schema.find_column_name(p.source_id),
            "transform": str(p.transform),
        }
        for p in table.spec().fields
    ]
    order = [
        {
            "column": schema.find_column_name(f.source_id),
            "transform": str(f.transform),
            "direction": f.direction.name.lower(),
            "nulls": f.null_order.name.lower(),
        }
        for f in table.sort_order().fields
    ]
    properties = dict(table.properties)
    layout: dict[str, Any] = {}
    if SORT in properties:
        try:
            layout = json.loads(properties[SORT])
        except ValueError:
            layout = {}
    partition_by: list[str] = []
    if PARTITIONING in properties:
        try:
            partition_by = list(json.loads(properties[PARTITIONING]))
        except ValueError:
            partition_by = []
    current = table.current_snapshot()
    snapshots = []
    for snapshot in sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True):
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        batches = summary.get(BATCHES)
        snapshots.append(
            {
                "snapshot_id": snapshot.snapshot_id,
                "parent_id": snapshot.parent_snapshot_id,
                "committed_at": _when(snapshot.timestamp_ms),
                "operation": snapshot.summary.operation.value if snapshot.summary else None,
                "current": current is not None and snapshot.snapshot_id == current.snapshot_id,
                "run_id": summary.get(RUN_ID),
                "added_records": _int(summary.get("added-records")),
                "deleted_records": _int(summary.get("deleted-records")),
                "total_records": _int(summary.get("total-records")),
                "added_files": _int(summary.get("added-data-files")),
                "batches": _count(batches),
                "watermark": summary.get(CURSOR),
                "lsn": summary.get(LSN),
            }
        )
    return {
        "identifier": identifier,
        "location": table.location(),
        "metadata_location": table.metadata_location,
        "format_version": table.metadata.format_version,
        "schema": fields,
        "partition_spec": spec,
        "partition_by": partition_by,
        "sort_order": order,
        "zorder": list(layout.get("zorder", [])),
        "sort_by": list(layout.get("sort_by", [])),
        "properties": {k: _shown(k, v) for k, v in sorted(properties.items()) if not k.startswith(BATCHES)},
        "snapshots": snapshots,
    }


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _count(batches: str | None) -> int | None:
    """How many batches a snapshot's ledger names (the ledger itself can be long)."""
    if not batches:
        return None
    try:
        parsed = json.loads(batches)
    except ValueError:
        return len([b for b in batches.split(",") if b])
    return len(parsed) if isinstance(parsed, list | dict) else None


def files(cache: TableCache, identifier: str, limit: int = MAX_ROWS) -> dict[str, Any] | None:
    """The current snapshot's data files: path, rows, size, partition (largest first)."""
    table = cache.get(identifier)
    if table is None:
        return None
    found: list[dict[str, Any]] = []
    if table.current_snapshot() is not None:
        listed = table.inspect.files().to_pylist()
        for row in listed:
            found.append(
                {
                    "path": row["file_path"],
                    "rows": row["record_count"],
                    "bytes": row["file_size_in_bytes"],
                    "partition": {k: json_cell(v) for k, v in (row.get("partition") or {}).items()},
                }
            )
    found.sort(key=lambda f: f["bytes"], reverse=True)
    return {
        "identifier": identifier,
        "count": len(found),
        "bytes": sum(f["bytes"] for f in found),
        "files": found[:limit],
    }


def _scan(table: Table) -> str:
    return f"iceberg_scan({quote_literal(local_path(table.metadata_location))})"


def preview(cache: TableCache, identifier: str, limit: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """The first ``limit`` rows of the table, read straight from its current snapshot."""
    table = cache.get(identifier)
    if table is None:
        return None
    columns = [f.name for f in table.schema().fields]
    if table.current_snapshot() is None:
        return {"identifier": identifier, "columns": columns, "rows": []}
    con = cache.engine()
    try:
        result = con.execute(f"SELECT * FROM {_scan(table)} LIMIT {max(1, min(limit, MAX_ROWS))}")
        columns = [d[0] for d in result.description or []]
        rows = [[json_cell(v) for v in row] for row in result.fetchall()]
    finally:
        con.close()
    return {"identifier": identifier, "columns": columns, "rows": rows}


def quarantine(
    cache: TableCache, identifier: str, reason: str | None = None, limit: int = PREVIEW_ROWS
) -> dict[str, Any] | None:
    """The table's quarantined rows with their reasons, counted by reason, filtered by one."""
    if identifier.endswith(QUARANTINE_SUFFIX):
        identifier = identifier.removesuffix(QUARANTINE_SUFFIX)
    table = cache.get(f"{identifier}{QUARANTINE_SUFFIX}")
    if table is None:
        return None if cache.get(identifier) is None else _empty_quarantine(identifier)
    if table.current_snapshot() is None:
        return _empty_quarantine(identifier)
    scan = _scan(table)
    con = cache.engine()
    try:
        reasons = con.execute(
            f"SELECT _lagoa_reason, count(*) FROM {scan} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 200"
        ).fetchall()
        where = f"WHERE _lagoa_reason = {quote_literal(reason)}" if reason else ""
        result = con.execute(
            f"SELECT * FROM {scan} {where} ORDER BY _lagoa_ingested_at DESC LIMIT {max(1, min(limit, MAX_ROWS))}"
        )
        columns = [d[0] for d in result.description or []]
        rows = [[json_cell(v) for v in row] for row in result.fetchall()]
        total = con.execute(f"SELECT count(*) FROM {scan} {where}").fetchone()
    finally:
        con.close()
    return {
        "identifier": identifier,
        "reasons": [{"reason": r, "rows": int(n)} for r, n in reasons],
        "reason": reason,
        "total": int(total[0]) if total else 0,
        "columns": columns,
        "rows": rows,
    }


def _empty_quarantine(identifier: str) -> dict[str, Any]:
    return {"identifier": identifier, "reasons": [], "reason": None, "total": 0, "columns": [], "rows": []}
