"""The source's slot and publication, through one ordinary (autocommit) session on its server:
the checks that the server can replicate, the publication's DDL, the advisory lock that keeps
one replicator per slot, peeking at the slot and advancing it, heartbeats, and the replication
connection that creates a slot exporting its starting snapshot."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from lagoa.core.config import PostgresSource, redact
from lagoa.core.errors import ConfigError, SlotBusyError
from lagoa.core.report import Reporter
from lagoa.core.sql import quote_identifier
from lagoa.sources.cdc.lsn import format_lsn, parse_lsn
from lagoa.sources.postgres import SESSION, Snapshot, SourceTable, connect, credentials

HEARTBEAT = "lagoa.heartbeat"
"""The prefix of the logical messages a replicator writes to move an idle slot forward."""
HEARTBEAT_BYTES = 1 << 20
"""How far the server may run ahead of an idle slot before a heartbeat is written."""


def replication_problem(con: Any) -> tuple[str, str] | None:
    """Why the server (or the connection's user) cannot replicate, and the fix; None if it can."""
    row = con.execute(
        "SELECT current_setting('wal_level'), current_user, "
        "(SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) OR EXISTS "
        "(SELECT 1 FROM pg_roles r WHERE r.rolname = 'rds_replication' AND pg_has_role(current_user, r.oid, 'member'))"
    ).fetchone()
    wal_level, user, may_replicate = row
    if wal_level != "logical":
        return (
            f"Postgres runs with wal_level = {wal_level}; CDC needs logical decoding",
            "run `ALTER SYSTEM SET wal_level = logical;` as a superuser and restart Postgres "
            "(on RDS: set rds.logical_replication = 1 in the parameter group and reboot)",
        )
    if not may_replicate:
        return (
            f"user `{user}` may not use replication slots",
            f"run `ALTER ROLE {user} WITH REPLICATION;` as a superuser (on RDS: "
            f"`GRANT rds_replication TO {user};`)",
        )
    return None


class SlotSession:
    """One source's slot (``slot``) and publication (``publication``) on its server. ``open``
    connects; until then only the names and credentials are known."""

    def __init__(
        self, name: str, config: PostgresSource, reporter: Reporter, *, slot: str, publication: str
    ) -> None:
        self.name = name
        self.config = config
        self.reporter = reporter
        self.dsn, self.secrets = credentials(config)
        self.slot = slot
        self.publication = publication
        self.con: Any = None
        self.heartbeats = True
        """False once the server refused a heartbeat (the slot then moves with changes only)."""

    def open(self) -> None:
        self.con = connect(self.dsn, self.name, self.secrets, autocommit=True)
        for setting in SESSION:
            self.con.execute(setting)

    def close(self) -> None:
        if self.con is not None:
            self.con.close()

    def error(self, message: str, hint: str) -> ConfigError:
        return ConfigError(f"source `{self.name}`: {redact(message, self.secrets)}", hint=hint)

    def say(self, message: str) -> None:
        self.reporter.stage(self.name, message)

    # -- checks and the lock -------------------------------------------------------------------

    def check(self) -> None:
        """Fail with what to change when the server cannot replicate."""
        problem = replication_problem(self.con)
        if problem is not None:
            raise self.error(*problem)

    def lock(self) -> None:
        """Take the slot's advisory lock, or say who holds it."""
        if not self.try_lock():
            holder = self.con.execute(
                "SELECT a.pid, a.client_addr, a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.objid = hashtext(%s)::oid AND l.granted LIMIT 1",
                (self.lock_key,),
            ).fetchone()
            who = (
                f" (Postgres backend pid {holder[0]}, connected {holder[2]:%Y-%m-%d %H:%M:%S})"
                if holder
                else ""
            )
            raise self.error(
                f"slot `{self.slot}` is in use by another `lagoa cdc` process{who}",
                "stop the other process first (one replicator per slot), or give this source "
                f"another `sources.{self.name}.slot`",
            )
        active = self.con.execute(
            "SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s AND active_pid IS NOT NULL",
            (self.slot,),
        ).fetchone()
        if active:
            raise self.error(
                f"slot `{self.slot}` is in use by another consumer (Postgres backend pid {active[0]})",
                f"stop that consumer, or give this source another `sources.{self.name}.slot`",
            )

    def try_lock(self) -> bool:
        """Take the slot's advisory lock (held by the replicator reading the slot; taken again
        by the same session, it stacks)."""
        (got,) = self.con.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (self.lock_key,)).fetchone()
        return bool(got)

    def unlock(self) -> None:
        self.con.execute("SELECT pg_advisory_unlock(hashtext(%s))", (self.lock_key,))

    @property
    def lock_key(self) -> str:
        return f"lagoa:{self.slot}"

    # -- the slot ------------------------------------------------------------------------------

    def exists(self) -> bool:
        return bool(
            self.con.execute(
                "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (self.slot,)
            ).fetchone()
        )

    @contextmanager
    def exporting(self, name: str, *, temporary: bool) -> Iterator[Snapshot]:
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
                raise self.error(
                    f"cannot create replication slot `{name}`: {message}",
                    "raise `max_replication_slots` (and restart Postgres) or drop unused slots"
                    if "replication slots" in message and "all" in message
                    else "check that the user has the REPLICATION attribute and that pg_hba.conf allows it",
                ) from None
            yield Snapshot(str(row[2]), parse_lsn(row[1]), datetime.now(UTC))
        finally:
            replication.close()

    def position(self) -> tuple[int, int]:
        """The server's WAL position and the slot's confirmed one."""
        row = self.con.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, confirmed_flush_lsn - '0/0'::pg_lsn "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (self.slot,),
        ).fetchone()
        if row is None:
            raise self.error(f"replication slot `{self.slot}` does not exist", "run `lagoa cdc setup` first")
        return int(row[0]), int(row[1])

    def peek(self, upto: int | None, limit: int | None) -> list[bytes]:
        """The slot's committed transactions up to ``upto`` (whole ones, about ``limit`` messages),
        left in the slot."""
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
            raise self.error(f"{str(exc).strip()}", "run `lagoa cdc setup` first") from None
        return [bytes(row[0]) for row in rows]

    def advance(self, lsn: int) -> None:
        """Move the slot to ``lsn``; when another session reads it at that moment, the next
        flush does."""
        import psycopg

        try:
            self.con.execute(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, format_lsn(lsn))
            )
        except psycopg.errors.ObjectInUse:  # read for a moment by another session: next flush
            self.say(f"slot `{self.slot}` was busy; it advances at the next flush")

    def heartbeat(self) -> None:
        """While no published table changes, other activity's WAL piles up behind the slot: write
        a marker the next flush decodes, so the slot can advance past it."""
        import psycopg

        if not self.heartbeats:
            return
        try:
            self.con.execute("SELECT pg_logical_emit_message(false, %s, '')", (HEARTBEAT,))
        except psycopg.Error as exc:
            self.heartbeats = False
            self.say(f"no heartbeat, so idle WAL is kept until a change: {str(exc).strip()}")

    def type_names(self) -> dict[int, str]:
        """Every type of the server, by oid."""
        return {
            int(oid): str(name)
            for oid, name in self.con.execute("SELECT oid::int8, typname FROM pg_type").fetchall()
        }

    # -- the publication -----------------------------------------------------------------------

    def ensure_publication(self, tables: list[SourceTable]) -> list[str]:
        """Create the publication, or add the tables it lacks. Returns what it did."""
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
            raise self.error(
                f"cannot publish the tables: {str(exc).strip()}",
                f"have the tables' owner (or a superuser) run `{statement};`, then run `lagoa cdc setup` again",
            ) from None

    def drop(self) -> list[str]:
        """Drop the slot and the publication, those that exist. Returns what it did."""
        done = []
        if self.exists():
            self.con.execute("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            done.append(f"dropped slot {self.slot}")
        if self.con.execute(
            "SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)
        ).fetchone():
            self.con.execute(f"DROP PUBLICATION {quote_identifier(self.publication)}")
            done.append(f"dropped publication {self.publication}")
        return done
