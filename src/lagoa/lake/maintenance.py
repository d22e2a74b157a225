"""Table maintenance: snapshot expiry with orphan-file cleanup, and compaction.

Lagoa keeps its ledger (the batches a table holds, the cursor) in snapshot summaries, so expiry
first carries the ledger forward into a new snapshot: forgetting old snapshots never makes a batch
look new. Only files older than the cut-off are deleted, so the staged files of a writer that is
still running are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from lagoa.core.errors import CommitConflictError, LakeError
from lagoa.core.names import BATCHES
from lagoa.core.sql import list_literal, quote_identifier
from lagoa.lake.catalog import Lake, local_path
from lagoa.lake.partitioning import PartitionField
from lagoa.lake.writer import layout, write_parquet

if TYPE_CHECKING:
    from pyiceberg.table import Table

LEDGER_PREFIX = "lagoa."
SORT = "lagoa.sort"
"""Table property: how optimize orders rows inside a partition (JSON: zorder, sort_by, rows_per_file)."""
PARTITIONING = "lagoa.partition-by"
"""Table property: the ``partition_by`` fields a table was created with (JSON list of strings)."""


@dataclass(frozen=True)
class ExpireResult:
    table: str
    expired_snapshots: int
    deleted_files: int
    kept_snapshots: int


@dataclass(frozen=True)
class OptimizeResult:
    table: str
    files_before: int
    files_after: int
    rows: int


def _table(lake: Lake, identifier: str) -> Table:
    table = lake.table(identifier)
    if table is None:
        hint = "run `lagoa tables` to list the tables"
        if "." not in identifier:
            hint = f"name a table with its namespace, e.g. `silver.{identifier}`; {hint}"
        raise LakeError(f"table `{identifier}` does not exist", hint=hint)
    return table


def expire(lake: Lake, identifier: str, older_than: datetime) -> ExpireResult:
    """Expire the snapshots older than ``older_than`` (never the current one) and delete the files
    no remaining snapshot references."""
    table = _table(lake, identifier)
    cutoff_ms = int(older_than.timestamp() * 1000)
    doomed = _older(table, cutoff_ms)
    if doomed:
        # The carry-forward snapshot becomes current; every older one may then go.
        table = _carry_ledger_forward(lake, table)
        doomed = _older(table, cutoff_ms)
        from pyiceberg.exceptions import CommitFailedException

        try:
            table.maintenance.expire_snapshots().by_ids(doomed).commit()
        except CommitFailedException as exc:
            raise CommitConflictError(f"expiring `{identifier}` failed: {exc}") from None
        table = table.refresh()
    deleted = _delete_orphans(lake, table, cutoff_ms / 1000)
    return ExpireResult(identifier, len(doomed), deleted, len(table.metadata.snapshots))


def _older(table: Table, cutoff_ms: int) -> list[int]:
    """Snapshots older than the cut-off, except the current one."""
    current = table.current_snapshot()
    return [
        s.snapshot_id
        for s in table.metadata.snapshots
        if s.timestamp_ms < cutoff_ms and (current is None or s.snapshot_id != current.snapshot_id)
    ]


def _carry_ledger_forward(lake: Lake, table: Table) -> Table:
    keys: set[str] = set()
    for snapshot in table.metadata.snapshots:
        if snapshot.summary:
            keys |= {k for k in snapshot.summary.additional_properties if k.startswith(LEDGER_PREFIX)}
    properties: dict[str, Any] = {BATCHES: sorted(lake.committed(table))}
    for key in keys - {BATCHES}:
        value = lake.latest(table, key)
        if value is not None:
            properties[key] = value
    return lake.commit(table, properties=properties, carry_forward=True)


def _referenced(table: Table) -> set[str]:
    """Every data, manifest and manifest-list file of the remaining snapshots."""
    files: set[str] = set()
    for snapshot in table.metadata.snapshots:
        files.add(local_path(snapshot.manifest_list))
        for manifest in snapshot.manifests(table.io):
            files.add(local_path(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
                files.add(local_path(entry.data_file.file_path))
    return files


def _delete_orphans(lake: Lake, table: Table, cutoff: float) -> int:
    """Delete the table's data and manifest files that no snapshot references and that are older
    than ``cutoff`` (seconds since the epoch); metadata JSON files are kept as history."""
    root = local_path(table.location())
    keep = _referenced(table)
    doomed = [
        location
        for location, modified in lake.storage.files_under(root)
        if not location.endswith(".json") and location not in keep and modified < cutoff
    ]
    lake.storage.remove(doomed)
    if lake.storage.s3 is None:
        _remove_empty_folders(Path(root), cutoff)
    return len(doomed)


def _remove_empty_folders(root: Path, cutoff: float) -> None:
    """Only old empty folders: a running writer's fresh staging folder stays (S3 has no folders)."""
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        try:
            if folder.stat().st_mtime < cutoff and not any(folder.iterdir()):
                folder.rmdir()
        except OSError:
            continue


_TRANSFORMS = {
    "IdentityTransform": "{}",
    "DayTransform": "day({})",
    "MonthTransform": "month({})",
    "YearTransform": "year({})",
    "HourTransform": "hour({})",
}


def _partitioning(table: Table) -> list[str]:
    """The table's partition fields as Lagoa writes them (``dt``, ``day(order_ts)``): recorded at
    creation by publish, else read back from the Iceberg spec."""
    recorded = table.metadata.properties.get(PARTITIONING)
    if recorded is not None:
        return [str(text) for text in json.loads(recorded)]
    return [
        _TRANSFORMS[type(field.transform).__name__].format(table.schema().find_field(field.source_id).name)
        for field in table.spec().fields
    ]


def optimize(lake: Lake, identifier: str, con: duckdb.DuckDBPyConnection) -> OptimizeResult:
    """Rewrite the table's files with ``con`` (one that reaches the lake's storage): small files
    merged per partition, rows put back in the table's sort or Z-order (recorded when it was
    published), in one commit."""
    from lagoa.lake.zorder import file_layout

    table = _table(lake, identifier)
    files = lake.data_files(table)
    if not files:
        return OptimizeResult(identifier, 0, 0, 0)
    sort = json.loads(table.metadata.properties.get(SORT, "{}"))
    names = [f.name for f in table.schema().fields]
    fields = [PartitionField.parse(text) for text in _partitioning(table)]
    keys = [f.duckdb_expression() for f in fields]
    projection = ", ".join(quote_identifier(n) for n in names)
    rows = f"SELECT {projection} FROM read_parquet({list_literal(files)}, union_by_name=true)"
    rows, partitions, hidden = file_layout(
        rows, keys, sort.get("zorder", []), sort.get("sort_by", []), int(sort.get("rows_per_file", 1_000_000))
    )
    con.execute("SET preserve_insertion_order = true")
    with lake.write(table, properties={"lagoa.operation": "optimize"}) as staged:
        written = write_parquet(con, rows, staged.folder, layout(table), partitions, hidden)
        staged.add, staged.remove = written.files, files
    return OptimizeResult(identifier, len(files), len(written.files), written.rows)
