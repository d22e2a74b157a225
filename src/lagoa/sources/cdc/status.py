"""How far a CDC source's slot is behind: its lag in bytes and seconds, the WAL it makes Postgres
keep, and the last LSN applied to each table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lagoa.core.errors import SlotBusyError
from lagoa.sources.cdc.lsn import held_lsn
from lagoa.sources.cdc.slot import SlotSession
from lagoa.sources.pgoutput import Begin, decode

if TYPE_CHECKING:
    from lagoa.workspace import Workspace


@dataclass
class TableStatus:
    table: str
    bronze_lsn: int | None
    silver_lsn: int | None


@dataclass
class Status:
    slot: str
    publication: str
    exists: bool
    active_pid: int | None = None
    confirmed_lsn: int | None = None
    current_lsn: int | None = None
    lag_bytes: int = 0
    lag_seconds: float = 0.0
    retained_wal_bytes: int = 0
    wal_status: str | None = None
    tables: list[TableStatus] = field(default_factory=list)


def slot_status(
    session: SlotSession, workspace: Workspace, tables: Callable[[], list[str]], *, peek: bool = True
) -> Status:
    """The slot's state and each of ``tables``' last LSN. With ``peek``, and when no consumer
    reads the slot, the first waiting transaction gives the lag in seconds."""
    status = Status(session.slot, session.publication, exists=False)
    row = session.con.execute(
        "SELECT active_pid, confirmed_flush_lsn - '0/0'::pg_lsn, pg_current_wal_lsn() - '0/0'::pg_lsn, "
        "pg_current_wal_lsn() - confirmed_flush_lsn, pg_current_wal_lsn() - restart_lsn, wal_status "
        "FROM pg_replication_slots WHERE slot_name = %s",
        (session.slot,),
    ).fetchone()
    lake = workspace.lake
    for table in tables():
        status.tables.append(
            TableStatus(
                table,
                held_lsn(lake, f"bronze.{table}__changes"),
                held_lsn(lake, f"silver.{table}"),
            )
        )
    if row is None:
        return status
    status.exists = True
    status.active_pid = row[0]
    status.confirmed_lsn, status.current_lsn = int(row[1]), int(row[2])
    status.lag_bytes, status.retained_wal_bytes, status.wal_status = int(row[3]), int(row[4]), row[5]
    if peek and status.lag_bytes > 0 and status.active_pid is None and session.try_lock():
        try:
            first = session.peek(None, 50)  # the first transaction (after any heartbeats)
        except SlotBusyError:
            first = []
        finally:
            session.unlock()
        for data in first:
            message = decode(data)
            if isinstance(message, Begin):
                status.lag_seconds = max(0.0, (datetime.now(UTC) - message.committed_at).total_seconds())
                break
    return status


def retained_warning(session: SlotSession, status: Status) -> str | None:
    """A warning when the slot makes Postgres keep more WAL than ``max_retained_wal_mb``."""
    bound = session.config.max_retained_wal_mb * 1024 * 1024
    if status.retained_wal_bytes > bound:
        return (
            f"slot `{session.slot}` makes Postgres keep {status.retained_wal_bytes / 2**20:,.0f} MB of WAL "
            f"(bound: {session.config.max_retained_wal_mb:,} MB): run `lagoa cdc run` more often, "
            "or `lagoa cdc drop` the slot if this source is retired"
        )
    return None
