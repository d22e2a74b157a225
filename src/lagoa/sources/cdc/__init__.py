"""Postgres sources, CDC mode: zero-ETL replication through a logical replication slot.

Setup creates (or reuses) a publication of the tables and a ``pgoutput`` slot. The slot is made
on a replication connection that exports its starting snapshot, and every table is copied from
that snapshot, so the copy and the change stream meet exactly. Then each flush:

1. peeks the slot's committed transactions (whole transactions, at most ``flush_rows`` changes);
2. per table, appends the changes to ``bronze.<table>__changes`` and applies them to
   ``silver.<table>``, one Iceberg commit each, with the LSN where the flush's last transaction
   ended in the snapshot summary (``lagoa.lsn``);
3. only then advances the slot.

A crash anywhere re-reads the changes after the slot's position, and each table skips those at or
below the LSN its commits already hold: every change lands exactly once. One source transaction
is never split between commits of a table; across tables, the commits are made one after another.

The parts: :mod:`.slot` (the slot, the publication, the lock, heartbeats), :mod:`.tables` (which
tables, checked), :mod:`.decode` (messages into change sets), :mod:`.apply` (change sets into the
lake, exactly once), :mod:`.status` (lag) and :mod:`.replicator` (the coordinator, ``follow`` and
``sync``).
"""

from lagoa.sources.cdc.lsn import format_lsn, parse_lsn
from lagoa.sources.cdc.replicator import FlushResult, Replicator, SyncResult, follow, sync
from lagoa.sources.cdc.slot import HEARTBEAT, HEARTBEAT_BYTES
from lagoa.sources.cdc.status import Status, TableStatus

__all__ = [
    "HEARTBEAT",
    "HEARTBEAT_BYTES",
    "FlushResult",
    "Replicator",
    "Status",
    "SyncResult",
    "TableStatus",
    "follow",
    "format_lsn",
    "parse_lsn",
    "sync",
]
