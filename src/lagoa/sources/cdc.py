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
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from lagoa.core.config import PostgresSource, redact
from lagoa.core.errors import ConfigError, SlotBusyError
from lagoa.core.names import ERROR_COLUMNS, LSN, RELATION, RUN_ID
from lagoa.core.sql import quote_identifier, quote_literal
from lagoa.lake.catalog import Lake
from lagoa.lake.mirror import apply_changes
from lagoa.lake.schema import duckdb_type, type_name
from lagoa.lake.writer import layout, write_parquet
from lagoa.sources.pgoutput import (
    UNCHANGED,
    Begin,
    Change,
    Commit,
    LogicalMessage,
    Relation,
    Truncate,
    decode,
)
from lagoa.sources.postgres import (
    SESSION,
    Column,
    Progress,
    Snapshot,
    SourceTable,
    connect,
    copy_tables,
    credentials,
    describe,
    lake_tables,
    reporting_progress,
    table_names,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lagoa.project import Project, SourceSummary

log = logging.getLogger("lagoa.cdc")

HEARTBEAT = "lagoa.heartbeat"
"""The prefix of the logical messages a replicator writes to move an idle slot forward."""
HEARTBEAT_BYTES = 1 << 20
"""How far the server may run ahead of an idle slot before a heartbeat is written."""


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


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


@dataclass
class FlushResult:
    changes: int = 0
    transactions: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    lsn: int | None = None
    more: bool = False
    """The flush stopped at ``flush_rows``: more changes are waiting."""
    committed_at: list[datetime] = field(default_factory=list)
    """When each applied transaction committed in Postgres (for measuring replication lag)."""


class _ChangeSet:
    """The changes of one table within one flush, column by column (values as Postgres text).

    An update leaves out the TOASTed values it did not touch. When an earlier change of the flush
    carried the value, it is filled in here; otherwise the row keeps the key (``origin``) under
    which the mirror holds it: the key before this flush, even if the key changed since."""

    def __init__(self, names: tuple[str, ...], key: list[str]) -> None:
        self.key = key
        self.values: dict[str, list[Any]] = {name: [] for name in names}
        self.op: list[str] = []
        self.txn: list[int] = []
        self.seq: list[int] = []
        self.unchanged: list[str | None] = []
        self.origins: list[tuple[Any, ...] | None] = []
        self.unchanged_columns: set[str] = set()
        self.latest: dict[
            tuple[Any, ...], tuple[tuple[Any, ...], tuple[str, ...], tuple[Any, ...] | None]
        ] = {}
        """Per key, its newest row in this flush, that row's column names, and the origin of the
        values it still lacks."""
        self.reshape(names)

    def reshape(self, names: tuple[str, ...]) -> None:
        """A new relation shape (a column added or dropped): later rows follow it."""
        for name in names:
            if name not in self.values:
                self.values[name] = [None] * len(self.op)
        self.names = names
        self.key_at = [names.index(k) for k in self.key]

    def key_of(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(row[i] for i in self.key_at)

    def insert(self, row: tuple[Any, ...], txn: int, seq: int) -> int:
        self.latest[self.key_of(row)] = (row, self.names, None)
        self._append("c", row, txn, seq, None)
        return 1

    def delete(self, row: tuple[Any, ...], txn: int, seq: int) -> int:
        self.latest.pop(self.key_of(row), None)
        self._append("d", row, txn, seq, None)
        return 1

    def truncate(self, txn: int, seq: int) -> int:
        self.latest.clear()
        self._append("t", (None,) * len(self.names), txn, seq, None)
        return 1

    def update(self, row: tuple[Any, ...], old: tuple[Any, ...] | None, txn: int, seq: int) -> int:
        """An update; when its key changed, the old key is deleted first (two changes)."""
        key = self.key_of(row)
        before = self.key_of(old) if old is not None else key
        moved = before != key
        prior = self.latest.pop(before, None)
        origin = None
        if UNCHANGED in row:
            if prior is not None:  # an earlier change of this flush has the values, or their origin
                earlier_row, earlier_names, origin = prior
                earlier = dict(zip(earlier_names, earlier_row, strict=True))
                row = tuple(
                    earlier.get(n, UNCHANGED) if v is UNCHANGED else v
                    for n, v in zip(self.names, row, strict=True)
                )
            else:
                origin = before
            if UNCHANGED not in row:
                origin = None
        self.latest[key] = (row, self.names, origin)
        if moved:
            self._append("d", old, txn, seq, None)  # type: ignore[arg-type]
        self._append("u", row, txn, seq + moved, origin)
        return 1 + moved

    def _append(
        self, op: str, row: tuple[Any, ...], txn: int, seq: int, origin: tuple[Any, ...] | None
    ) -> None:
        missing = None
        if UNCHANGED in row:
            missing = [n for n, v in zip(self.names, row, strict=True) if v is UNCHANGED]
            self.unchanged_columns.update(missing)
            row = tuple(None if v is UNCHANGED else v for v in row)
        if len(self.names) == len(self.values):
            for column, value in zip(self.values.values(), row, strict=True):
                column.append(value)
        else:  # a column was dropped at the source: it gets NULL from here on
            given = dict(zip(self.names, row, strict=True))
            for name, column in self.values.items():
                column.append(given.get(name))
        self.op.append(op)
        self.txn.append(txn)
        self.seq.append(seq)
        self.unchanged.append(",".join(missing) if missing else None)
        self.origins.append(origin if missing else None)

    def arrow(self, ends: list[int], begins: list[Begin]) -> pa.Table:
        arrays: dict[str, pa.Array] = {name: pa.array(v, pa.string()) for name, v in self.values.items()}
        arrays["lagoa_op"] = pa.array(self.op, pa.string())
        arrays["lagoa_lsn"] = pa.array([ends[t] for t in self.txn], pa.int64())
        arrays["lagoa_seq"] = pa.array(self.seq, pa.int64())
        arrays["lagoa_xid"] = pa.array([begins[t].xid for t in self.txn], pa.int64())
        arrays["lagoa_committed_at"] = pa.array(
            [begins[t].committed_at for t in self.txn], pa.timestamp("us", tz="UTC")
        )
        arrays["lagoa_unchanged"] = pa.array(self.unchanged, pa.string())
        for i in range(len(self.key)):
            arrays[f"lagoa_origin_{i}"] = pa.array([o[i] if o else None for o in self.origins], pa.string())
        return pa.table(arrays)


@dataclass(eq=False)
class _Mirror:
    """One replicated table: its shape as last described by Postgres, and the columns dropped
    since Lagoa started following it."""

    table: SourceTable
    dropped: set[str] = field(default_factory=set)


class Replicator:
    """Replicates one ``kind: postgres, mode: cdc`` source. Use as a context manager: it holds
    a lock so that one replicator at a time uses the slot."""

    def __init__(
        self,
        project: Project,
        name: str,
        config: PostgresSource,
        *,
        run_id: str,
        report: Any = None,
        progress: Progress | None = None,
    ) -> None:
        self.project = project
        self.name = name
        self.config = config
        self.run_id = run_id
        self.report = report or (lambda message: log.info("%s", message))
        self.progress = progress or reporting_progress(self.report)
        self.dsn, self.secrets = credentials(config)
        self.slot = config.slot_name(name)
        self.publication = config.publication_name(name)
        self.con: Any = None
        self.duck = duckdb.connect()
        self.mirrors: dict[str, _Mirror] = {}
        self.by_oid: dict[int, _Mirror] = {}
        self.shapes: dict[int, tuple[str, ...]] = {}
        """Per relation, its column names as last described by Postgres."""
        self.types: dict[int, str] = {}
        self.heartbeats = True
        """False once the server refused a heartbeat (the slot then moves with changes only)."""
        self.copied_rows = 0
        """Rows copied from snapshots by this replicator (by setup and resync)."""

    # -- connection and checks -------------------------------------------------------------

    def __enter__(self) -> Replicator:
        try:
            self.con = connect(self.dsn, self.name, self.secrets, autocommit=True)
            for setting in SESSION:
                self.con.execute(setting)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
        self.duck.close()

    def _error(self, message: str, hint: str) -> ConfigError:
        return ConfigError(f"source `{self.name}`: {redact(message, self.secrets)}", hint=hint)

    def check(self) -> None:
        """Fail with what to change when the server cannot replicate."""
        row = self.con.execute(
            "SELECT current_setting('wal_level'), current_user, "
            "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) OR EXISTS "
            "(SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND pg_has_role(current_user, r.oid, 'member'))"
        ).fetchone()
        wal_level, user, may_replicate = row
        if wal_level != "logical":
            raise self._error(
                f"Postgres runs with wal_level = {wal_level}; CDC needs logical decoding",
                "run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart Postgres "
                "(on RDS: set rds.logical_replication = 1 in the parameter group and reboot)",
            )
        if not may_replicate:
            raise self._error(
                f"user `{user}` may not use replication slots",
                f"run `ALTER ROLE {user} WITH REPLICATION;` as a superuser (on RDS: "
                f"`GRANT rds_replication TO {user};`)",
            )

    def lock(self) -> None:
        """Take the slot's advisory lock, or say who holds it."""
        if not self._try_lock():
            holder = self.con.execute(
                "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.objid = hashtext(%s)::oid AND l.granted LIMIT 1",
                (self._lock_key,),
            ).fetchone()
            who = (
                f" (Postgres backend pid {holder[0]}, connected {holder[2]:%Y-%m-%d %H:%M:%S})"
                if holder
                else ""
            )
            raise self._error(
                f"slot `{self.slot}` is in use by another `lagoa cdc` process{who}",
                "stop the other process first (one replicator per slot), or give this source "
                f"another `sources.{self.name}.slot`",
            )
        active = self.con.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s AND active_pid IS NOT NULL",
            (self.slot,),
        ).fetchone()
        if active:
            raise self._error(
                f"slot `{self.slot}` is in use by another consumer (Postgres backend pid {active[0]})",
                f"stop that consumer, or give this source another `sources.{self.name}.slot`",
            )

    # -- setup ---------------------------------------------------------------------------------

    def _describe_tables(self) -> list[SourceTable]:
        """The tables (generated columns left out: logical replication does not send them),
        each checked for a replica identity that identifies rows by the mirror's key."""
        tables = [
            describe(self.con, self.name, self.config, table, generated=False)
            for table in table_names(self.con, self.name, self.config)
        ]
        for table in tables:
            qualified = f"{table.schema}.{table.name}"
            if table.nullable_key:
                raise self._error(
                    f"key column(s) {', '.join(table.nullable_key)} of `{qualified}` may be NULL, and "
                    "changes to rows with a NULL key cannot be matched",
                    f"ALTER TABLE {qualified} ALTER COLUMN … SET NOT NULL, or declare other `keys`",
                )
            problem = _identity_problem(table)
            if problem:
                raise self._error(
                    f"table `{qualified}`: {problem}, so its updates and deletes cannot be matched to rows",
                    f"run `ALTER TABLE {qualified} REPLICA IDENTITY {'DEFAULT' if table.primary_key else 'FULL'};`"
                    + ("" if table.primary_key else f" (keeping `sources.{self.name}.keys.{table.name}`)"),
                )
        return tables

    def setup(self) -> list[str]:
        """Create what is missing: the publication, the slot (copying every table from its
        starting snapshot), and the mirror of any table added since. Returns what it did."""
        self.check()
        self.lock()
        tables = self._describe_tables()
        done: list[str] = []
        done += self._ensure_publication(tables)
        exists = self.con.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        ).fetchone()
        if not exists:
            with self._exporting_slot(self.slot, temporary=False) as taken:
                done.append(f"created slot {self.slot} at {format_lsn(taken.lsn)}")
                rows = self._copy(tables, taken)
            done.append(f"copied {len(tables)} table(s), {rows:,} rows, from the slot's snapshot")
        else:
            missing = [t for t in tables if self._needs_copy(t)]
            if missing:
                rows = self._snapshot(missing)
                done.append(f"copied {', '.join(t.name for t in missing)}: {rows:,} rows")
        for table in tables:
            self._track(table)
        return done

    def _needs_copy(self, table: SourceTable) -> bool:
        """True when the mirror holds no complete copy, or one of an older table of that name."""
        lake = self.project.lake
        silver = lake.table(f"silver.{table.name}")
        if _lsn(lake, silver) is None:
            return True
        oid = lake.latest(silver, RELATION)
        return oid is not None and int(oid) != table.oid

    @contextmanager
    def _exporting_slot(self, name: str, *, temporary: bool) -> Iterator[Snapshot]:
        """Create a slot on a replication connection that exports its starting snapshot: rows read
        in that snapshot and changes after the slot's consistent point meet exactly. The
        snapshot (and a temporary slot) lasts until the block ends."""
        import psycopg

        replication = connect(self.dsn, self.name, self.secrets, autocommit=True, replication="database")
        try:
            kind = "TEMPORARY LOGICAL" if temporary else "LOGICAL"
            try:
                row = replication.execute(
                    f"CREATE_REPLICATION_SLOT {quote_identifier(name)} {kind} pgoutput EXPORT_SNAPSHOT"
                ).fetchone()
            except psycopg.Error as exc:
                message = str(exc).strip()
                raise self._error(
                    f"cannot create replication slot `{name}`: {message}",
                    "raise `max_replication_slots` (and restart Postgres) or drop unused slots"
                    if "replication slots" in message and "all" in message
                    else "check that the user has the REPLICATION attribute and that pg_hba.conf allows it",
                ) from None
            yield Snapshot(str(row[2]), _parse_lsn(row[1]), datetime.now(UTC))
        finally:
            replication.close()

    def _snapshot(self, tables: list[SourceTable]) -> int:
        """Copy tables the slot already streams (added later, or resynced), from a temporary
        slot's snapshot: its consistent point is exactly where their changes take over."""
        with self._exporting_slot(f"{self.slot}_copy_{uuid.uuid4().hex[:8]}", temporary=True) as taken:
            return self._copy(tables, taken)

    def _copy(self, tables: list[SourceTable], taken: Snapshot) -> int:
        rows = copy_tables(
            self.project,
            self.name,
            self.dsn,
            self.secrets,
            tables,
            taken,
            parallel=self.config.parallel,
            run_id=self.run_id,
            now=taken.taken_at,
            report=self.report,
            progress=self.progress,
        )
        self.copied_rows += rows
        return rows

    def _ensure_publication(self, tables: list[SourceTable]) -> list[str]:

        wanted = {(t.schema, t.name) for t in tables}
        exists = self.con.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)
        ).fetchone()
        have = {
            (str(s), str(t))
            for s, t in self.con.execute(
                "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = %s",
                (self.publication,),
            ).fetchall()
        }
        missing = sorted(wanted - have)
        done = []
        partitioned = self.con.execute(
            "SELECT count(*) FROM pg_class WHERE relkind = 'p' AND oid = ANY(%s)", ([t.oid for t in tables],)
        ).fetchone()
        via_root = self.con.execute(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = %s", (self.publication,)
        ).fetchone()
        if exists and partitioned and partitioned[0] and via_root and not via_root[0]:
            # Otherwise a partitioned table's changes come under its partitions' names.
            self._publish(
                f"ALTER PUBLICATION {quote_identifier(self.publication)} SET (publish_via_partition_root = true)"
            )
            done.append(f"publication {self.publication} publishes partitioned tables as themselves")
        if exists and not missing:
            return done
        names = ", ".join(f"{quote_identifier(s)}.{quote_identifier(t)}" for s, t in missing)
        statement = (
            f"ALTER PUBLICATION {quote_identifier(self.publication)} ADD TABLE {names}"
            if exists
            else f"CREATE PUBLICATION {quote_identifier(self.publication)} FOR TABLE {names} "
            "WITH (publish_via_partition_root = true)"  # a partitioned table's changes come as its own
        )
        self._publish(statement)
        return [*done, f"{'added to' if exists else 'created'} publication {self.publication}: {names}"]

    def _publish(self, statement: str) -> None:
        import psycopg

        try:
            self.con.execute(statement)
        except psycopg.Error as exc:
            raise self._error(
                f"cannot publish the tables: {str(exc).strip()}",
                f"have the tables' owner (or a superuser) run `{statement};`, then run `lagoa cdc setup` again",
            ) from None

    def _listed(self) -> list[str]:
        return [name.split(".")[-1] for name in table_names(self.con, self.name, self.config)]

    def _track(self, table: SourceTable) -> None:
        self.mirrors[table.name] = self.mirrors.get(table.name) or _Mirror(table)

    # -- status and drop -----------------------------------------------------------------------

    def status(self, *, peek: bool = True) -> Status:
        status = Status(self.slot, self.publication, exists=False)
        row = self.con.execute(
            "SELECT active_pid, confirmed_flush_lsn - '0/0'::pg_lsn, pg_current_wal_lsn() - '0/0'::pg_lsn, "
            "pg_current_wal_lsn() - confirmed_flush_lsn, pg_current_wal_lsn() - restart_lsn, wal_status "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        lake = self.project.lake
        for table in self.config.entities() or sorted(self.mirrors) or self._listed():
            status.tables.append(
                TableStatus(
                    table,
                    _lsn(lake, lake.table(f"bronze.{table}__changes")),
                    _lsn(lake, lake.table(f"silver.{table}")),
                )
            )
        if row is None:
            return status
        status.exists = True
        status.active_pid = row[0]
        status.confirmed_lsn, status.current_lsn = int(row[1]), int(row[2])
        status.lag_bytes, status.retained_wal_bytes, status.wal_status = int(row[3]), int(row[4]), row[5]
        if peek and status.lag_bytes > 0 and status.active_pid is None and self._try_lock():
            try:
                first = self._peek(None, 50)  # the first transaction (after any heartbeats)
            except SlotBusyError:
                first = []
            finally:
                self.con.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self._lock_key,))
            for data in first:
                message = decode(data)
                if isinstance(message, Begin):
                    status.lag_seconds = max(0.0, (datetime.now(UTC) - message.committed_at).total_seconds())
                    break
        return status

    def _try_lock(self) -> bool:
        """Take the slot's advisory lock (held by the replicator reading the slot; taken again
        by the same session, it stacks)."""
        (got,) = self.con.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self._lock_key,)).fetchone()
        return bool(got)

    @property
    def _lock_key(self) -> str:
        return f"lagoa:{self.slot}"

    def retained_warning(self, status: Status) -> str | None:
        bound = self.config.max_retained_wal_mb * 1024 * 1024
        if status.retained_wal_bytes > bound:
            return (
                f"slot `{self.slot}` makes Postgres keep {status.retained_wal_bytes / 2**20:,.0f} MB of WAL "
                f"(bound: {self.config.max_retained_wal_mb:,} MB): run `lagoa cdc run` more often, "
                "or `lagoa cdc drop` the slot if this source is retired"
            )
        return None

    def drop(self) -> list[str]:
        """Drop the slot and the publication (the lake tables stay)."""
        self.lock()
        done = []
        if self.con.execute(
            "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
        ).fetchone():
            self.con.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            done.append(f"dropped slot {self.slot}")
        if self.con.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)
        ).fetchone():
            self.con.execute(f"DROP PUBLICATION {quote_identifier(self.publication)}")
            done.append(f"dropped publication {self.publication}")
        return done

    # -- replication ---------------------------------------------------------------------------

    def _peek(self, upto: int | None, limit: int | None) -> list[bytes]:
        import psycopg

        try:
            rows = self.con.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, "
                "'proto_version', '1', 'publication_names', %s, 'messages', 'true')",
                (self.slot, format_lsn(upto) if upto is not None else None, limit, self.publication),
                binary=True,
            ).fetchall()
        except psycopg.errors.ObjectInUse as exc:
            raise SlotBusyError(
                self.name,
                f"slot `{self.slot}` is in use: {str(exc).strip()}",
                hint=f"stop the other consumer, or give this source another `sources.{self.name}.slot`",
            ) from None
        except psycopg.errors.UndefinedObject as exc:
            raise self._error(f"{str(exc).strip()}", "run `lagoa cdc setup` first") from None
        return [bytes(row[0]) for row in rows]

    def flush(self) -> FlushResult:
        """Apply the committed transactions waiting in the slot (up to ``flush_rows`` changes)."""
        result = FlushResult()
        row = self.con.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, confirmed_flush_lsn - '0/0'::pg_lsn "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        if row is None:
            raise self._error(f"replication slot `{self.slot}` does not exist", "run `lagoa cdc setup` first")
        upto, confirmed = int(row[0]), int(row[1])
        limit = self.config.flush_rows
        messages = self._peek(upto, limit)
        result.more = len(messages) >= limit
        changes, begins, ends, decoded = self._collect(messages)
        result.transactions = len(ends)
        result.committed_at = [begin.committed_at for begin in begins]
        if changes:
            result.lsn = ends[-1]
            for mirror, change_set in changes.items():
                result.tables[mirror.table.name] = self._apply(mirror, change_set, begins, ends)
            result.changes = sum(result.tables.values())
        # Advance only to a position decoded here: the end of a transaction, or a heartbeat.
        # Decoding reads flushed WAL only, and an asynchronous commit is written (counted in
        # pg_current_wal_lsn) before it is flushed: advancing to the server's position would skip it.
        if decoded > confirmed:
            import psycopg

            try:
                self.con.execute(
                    "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, format_lsn(decoded))
                )
            except psycopg.errors.ObjectInUse:  # read for a moment by another session: next flush
                self.report(f"slot `{self.slot}` was busy; it advances at the next flush")
        elif not ends and upto - confirmed >= HEARTBEAT_BYTES:
            self._heartbeat()
        return result

    def _heartbeat(self) -> None:
        """While no published table changes, other activity's WAL piles up behind the slot: write
        a marker the next flush decodes, so the slot can advance past it."""
        import psycopg

        if not self.heartbeats:
            return
        try:
            self.con.execute("SELECT pg_logical_emit_message(false, %s, '')", (HEARTBEAT,))
        except psycopg.Error as exc:
            self.heartbeats = False
            self.report(f"no heartbeat, so idle WAL is kept until a change: {str(exc).strip()}")

    def _collect(
        self, messages: list[bytes]
    ) -> tuple[dict[_Mirror, _ChangeSet], list[Begin], list[int], int]:
        """Decode the messages into per-table change sets, in commit order, leaving out the
        transactions each mirror already holds. Also returns the transactions' beginnings and
        ends, and the last position decoded (0 if none)."""
        changes: dict[_Mirror, _ChangeSet] = {}
        begins: list[Begin] = []
        ends: list[int] = []
        decoded = 0
        applied: dict[_Mirror, int] = {}
        txn = -1
        seq = 0
        for data in messages:
            message = decode(data)
            if isinstance(message, Change):
                mirror = self.by_oid.get(message.relation)
                if mirror is None or begins[-1].final_lsn < self._applied(mirror, applied):
                    continue
                change_set = changes.get(mirror)
                shape = self.shapes[message.relation]
                if change_set is None:
                    change_set = changes[mirror] = _ChangeSet(shape, mirror.table.key)
                elif change_set.names != shape:
                    change_set.reshape(shape)
                if message.op == "u":
                    seq += change_set.update(message.row, message.old_key, txn, seq)
                elif message.op == "c":
                    seq += change_set.insert(message.row, txn, seq)
                else:
                    seq += change_set.delete(message.row, txn, seq)
            elif isinstance(message, Begin):
                begins.append(message)
                txn += 1
                seq = 0
            elif isinstance(message, Commit):
                ends.append(message.end_lsn)
                decoded = message.end_lsn
            elif isinstance(message, LogicalMessage) and message.prefix == HEARTBEAT:
                decoded = max(decoded, message.lsn)
            elif isinstance(message, Relation):
                mirror = self._relation(message)
                if mirror is not None:
                    self.shapes[message.oid] = tuple(c.name for c in message.columns)
            elif isinstance(message, Truncate):
                for oid in message.relations:
                    mirror = self.by_oid.get(oid)
                    if mirror is None or begins[-1].final_lsn < self._applied(mirror, applied):
                        continue
                    change_set = changes.get(mirror) or changes.setdefault(
                        mirror, _ChangeSet(self.shapes[oid], mirror.table.key)
                    )
                    seq += change_set.truncate(txn, seq)
        return changes, begins, ends, decoded

    def _applied(self, mirror: _Mirror, known: dict[_Mirror, int]) -> int:
        """The LSN the mirror's silver table holds: its changes up to there are applied, so
        they are skipped (and so are not the ``origin`` of a value an update left out)."""
        if mirror not in known:
            lake = self.project.lake
            known[mirror] = _lsn(lake, lake.table(f"silver.{mirror.table.name}")) or 0
        return known[mirror]

    def _relation(self, message: Relation) -> _Mirror | None:
        """Track a table's shape: columns added, dropped or retyped at the source."""
        mirror = next((m for m in self.mirrors.values() if m.table.oid == message.oid), None)
        qualified = f"{message.schema}.{message.name}"
        if mirror is not None and (mirror.table.schema, mirror.table.name) != (message.schema, message.name):
            raise self._error(
                f"table `{mirror.table.schema}.{mirror.table.name}` was renamed to `{qualified}`",
                f"list `{qualified}` in `sources.{self.name}.tables`, then run `lagoa cdc setup` (it "
                "copies the table again)",
            )
        named = self.mirrors.get(message.name)
        if mirror is None and named is not None and named.table.schema == message.schema:
            raise self._error(
                f"table `{qualified}` was dropped and created again since Lagoa described it",
                "run `lagoa cdc setup`: it copies the new table (changes it had before being "
                "published again were never sent)",
            )
        if mirror is None:
            return None  # a table of the publication this source does not mirror
        self.by_oid[message.oid] = mirror
        unknown = [c.type_oid for c in message.columns if c.type_oid not in self.types]
        if unknown:
            self.types.update(
                (int(oid), str(name))
                for oid, name in self.con.execute("SELECT oid::int8, typname FROM pg_type").fetchall()
            )
        columns = []
        for c in message.columns:
            numeric = self.types.get(c.type_oid) == "numeric" and c.type_modifier > 0
            precision = ((c.type_modifier - 4) >> 16) & 0xFFFF if numeric else None
            scale = (c.type_modifier - 4) & 0xFFFF if numeric else None
            columns.append(Column(c.name, self.types.get(c.type_oid, "text"), precision, scale))
        before = {c.name for c in mirror.table.columns} | mirror.dropped
        now = {c.name for c in columns}
        for gone in sorted(before - now - mirror.dropped):
            self.report(
                f"column `{gone}` was dropped from `{message.schema}.{message.name}`: silver keeps it, "
                "NULL in rows changed from now on"
            )
            mirror.dropped.add(gone)
        mirror.table = dataclasses.replace(mirror.table, columns=columns)
        return mirror

    def _apply(self, mirror: _Mirror, change_set: _ChangeSet, begins: list[Begin], ends: list[int]) -> int:
        """Append one table's changes to its change log, then apply them to its mirror; each
        skips the changes its commits already hold."""
        lake = self.project.lake
        table = mirror.table
        bronze, silver = lake_tables(
            lake,
            table,
            hint=f"copy the table again: `lagoa cdc resync {self.name} {table.name}` (its change log "
            "and mirror start afresh from a new snapshot)",
        )
        silver_lsn = _lsn(lake, silver) or 0
        # Bronze is committed first, so it is never behind silver; after a snapshot it has no LSN.
        bronze_lsn = max(_lsn(lake, bronze) or 0, silver_lsn)
        properties: dict[str, object] = {LSN: str(ends[-1]), RUN_ID: self.run_id, RELATION: str(table.oid)}
        relation = "lagoa_changes"  # tables are applied one at a time
        self.duck.register(relation, change_set.arrow(ends, begins))
        try:
            typed = _typed(relation, table, list(change_set.values), silver)
            bronze_rows = self._count(relation, bronze_lsn)
            if bronze_rows:
                select = f"SELECT {self._log_columns(bronze, ends[-1])} FROM ({typed}) WHERE lagoa_lsn > {bronze_lsn}"
                written = write_parquet(self.duck, select, lake.staging_folder(bronze), layout(bronze))
                lake.commit(bronze, add=written.files, properties=properties)
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
        finally:
            self.duck.unregister(relation)

    def _log_columns(self, bronze: Table, lsn: int) -> str:
        """The change log's columns from the typed changes, with the lineage of this flush."""
        now = quote_literal(datetime.now(UTC).isoformat())
        lineage = {
            "_lagoa_batch_id": quote_literal(f"lsn:{format_lsn(lsn)}"),
            "_lagoa_ingested_at": f"CAST({now} AS TIMESTAMPTZ)",
            "_lagoa_source": quote_literal(f"{self.name}:{self.slot}"),
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

    def resync(self, tables: list[str]) -> list[str]:
        """Rebuild the mirrors of ``tables`` from a new snapshot (after an incompatible change)."""
        self.check()
        self.lock()
        chosen = [t for t in self._describe_tables() if t.name in tables]
        unknown = set(tables) - {t.name for t in chosen}
        if unknown:
            raise self._error(
                f"not a table of this source: {', '.join(sorted(unknown))}",
                f"pick from {', '.join(self._listed())}",
            )
        lake = self.project.lake
        for table in chosen:
            for identifier in (f"silver.{table.name}", f"bronze.{table.name}__changes"):
                if lake.table(identifier) is not None:
                    lake.catalog.drop_table(identifier)
        rows = self._snapshot(chosen)
        for table in chosen:
            self._track(table)
        return [f"copied {', '.join(t.name for t in chosen)} again: {rows:,} rows"]


def _identity_problem(table: SourceTable) -> str | None:
    """Why Postgres's replica identity would not carry the mirror's key, if it would not."""
    if table.identity == "f":
        return None
    if table.identity == "n":
        return "its replica identity is NOTHING, so Postgres sends no old row"
    if table.identity == "d":
        return None if table.primary_key else "it has no primary key, so Postgres sends no old row"
    if sorted(table.identity_columns) != sorted(table.key):
        return (
            f"its replica identity index ({', '.join(table.identity_columns)}) is not the key "
            f"({', '.join(table.key)})"
        )
    return None


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


def _lsn(lake: Lake, table: Table | None) -> int | None:
    """The WAL position the table's newest commit holds (None before its first copy)."""
    value = lake.latest(table, LSN)
    return int(value) if value is not None else None


def _parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def follow(
    replicator: Replicator, stop: threading.Event, *, on_flush: Any = None, once: bool = False
) -> FlushResult:
    """Flush until ``stop`` is set (or, with ``once``, until caught up): at once while changes
    wait beyond ``flush_rows``, else every ``flush_interval`` seconds."""
    total = FlushResult()
    interval = replicator.config.flush_interval
    while not stop.is_set():
        started = time.monotonic()
        try:
            result = replicator.flush()
        except SlotBusyError as busy:
            if once:
                raise
            replicator.report(f"{busy}; trying again in {interval} s")
            stop.wait(interval)
            continue
        total.changes += result.changes
        total.transactions += result.transactions
        for table, count in result.tables.items():
            total.tables[table] = total.tables.get(table, 0) + count
        total.lsn = result.lsn or total.lsn
        if on_flush is not None and (result.changes or result.transactions):
            on_flush(result)
        if result.more:
            continue
        if once:
            break
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return total


def sync(
    project: Project,
    name: str,
    config: PostgresSource,
    summary: SourceSummary,
    *,
    run_id: str,
    report: Any,
) -> SourceSummary:
    """The ``ingest`` step of a CDC source: set up what is missing, then apply every change
    committed so far."""
    with Replicator(project, name, config, run_id=run_id, report=report) as replicator:
        for line in replicator.setup():
            report(line)
        result = follow(replicator, threading.Event(), once=True)
    summary.bronze_rows += replicator.copied_rows + result.changes
    summary.silver_rows += replicator.copied_rows + result.changes
    if result.changes:
        report(f"applied {result.changes:,} change(s) from {result.transactions:,} transaction(s)")
    return summary
