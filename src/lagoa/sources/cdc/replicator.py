"""The replicator of one CDC source: sets up the publication, the slot and the copies, flushes
the slot's changes into the lake, and follows it; resync and drop. It coordinates the slot's
session (:mod:`.slot`), the decoder (:mod:`.decode`) and the applier (:mod:`.apply`)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from lagoa.core.config import PostgresSource
from lagoa.core.errors import SlotBusyError, SourceError
from lagoa.core.report import LogReporter, Reporter
from lagoa.sources.cdc.apply import Applier
from lagoa.sources.cdc.decode import Decoder, Mirror, dropped_column
from lagoa.sources.cdc.ledger import open_ledger
from lagoa.sources.cdc.lsn import format_lsn
from lagoa.sources.cdc.slot import HEARTBEAT_BYTES, SlotSession
from lagoa.sources.cdc.status import Status, retained_warning, slot_status
from lagoa.sources.cdc.tables import catalog_columns, describe_tables, listed, needs_copy
from lagoa.sources.postgres import Snapshot, SourceTable, copy_tables, describe, lake_tables

if TYPE_CHECKING:
    from lagoa.workspace import Workspace

log = logging.getLogger("lagoa.cdc")


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


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync` did."""

    copied_rows: int
    """Rows copied from snapshots (the first copy, and tables added since)."""
    changes: int
    """Changes applied (each to the change log and the mirror)."""
    transactions: int

    @property
    def rows(self) -> int:
        """Rows written to bronze, and to silver: the copies and the changes."""
        return self.copied_rows + self.changes


class Replicator:
    """Replicates one ``kind: postgres, mode: cdc`` source. Use as a context manager: it holds
    a lock so that one replicator at a time uses the slot. Told what it does through
    ``reporter`` (by default, the ``lagoa.cdc`` logger)."""

    def __init__(
        self,
        workspace: Workspace,
        name: str,
        config: PostgresSource,
        *,
        run_id: str,
        reporter: Reporter | None = None,
    ) -> None:
        self.workspace = workspace
        self.name = name
        self.config = config
        self.run_id = run_id
        self.reporter: Reporter = reporter if reporter is not None else LogReporter(log)
        self.ledger = open_ledger(workspace, name, config)
        self.session = SlotSession(
            name, config, self.reporter, slot=self.ledger.slot, publication=self.ledger.publication
        )
        self.slot = self.session.slot
        self.publication = self.session.publication
        self.applier = Applier(workspace, name, self.slot, run_id)
        self.decoder = Decoder(self.session, self.reporter)
        self.copied_rows = 0
        """Rows copied from snapshots by this replicator (by setup and resync)."""

    def __enter__(self) -> Replicator:
        try:
            self.session.open()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()
        self.applier.close()

    def say(self, message: str) -> None:
        self.reporter.stage(self.name, message)

    def check(self) -> None:
        """Fail with what to change when the server cannot replicate."""
        self.session.check()

    def lock(self) -> None:
        """Take the slot's advisory lock, or say who holds it."""
        self.session.lock()

    # -- setup ---------------------------------------------------------------------------------

    def setup(self) -> list[str]:
        """Create what is missing: the publication, the slot (copying every table from its
        starting snapshot), and the mirror of any table added since. Returns what it did."""
        self.check()
        self.lock()
        tables = describe_tables(self.session)
        exists = self.session.exists()
        if exists and self.ledger.confirmed is None and not self.ledger.inherited:
            self._adopt()
        done: list[str] = []
        done += self.session.ensure_publication(tables)
        if not exists:
            with self.session.exporting(self.slot, temporary=False) as taken:
                self.ledger.confirmed = taken.lsn
                self.ledger.save()
                done.append(f"created slot {self.slot} at {format_lsn(taken.lsn)}")
                rows = self._copy(tables, taken)
            done.append(f"copied {len(tables)} table(s), {rows:,} rows, from the slot's snapshot")
        else:
            self._claim(self.session.position()[1])
            missing = [t for t in tables if needs_copy(self.workspace.lake, t)]
            if missing:
                rows = self._snapshot(missing)
                done.append(f"copied {', '.join(t.name for t in missing)}: {rows:,} rows")
        for table in tables:
            self.decoder.track(table)
        return done + self._reconcile(tables)

    def _adopt(self) -> None:
        """Take a slot this lake did not create (named in ``slot``) only when this lake applied
        every change before the slot's position (it moved its previous slot that far). Else
        refuse it: it may be another lake's (two lakes on one slot split its changes), and the
        changes before it never reached this lake."""
        confirmed = self.session.position()[1]
        if self.ledger.applied is not None and confirmed <= self.ledger.applied:
            return
        raise self.session.error(
            f"slot `{self.slot}` exists, but this lake did not create it, and changes before its "
            f"position ({format_lsn(confirmed)}) never reached this lake: another lake may be reading "
            "it (two lakes on one slot split its changes)",
            f"give this source a slot of its own (another `sources.{self.name}.slot`, or none: the "
            "default is unique to each lake), or, if nothing reads the slot, drop it: "
            f"`lagoa cdc drop {self.name}`",
        )

    def _claim(self, confirmed: int) -> None:
        """Fail when someone else moved the slot past where this lake left it; the slot of a lake
        set up before lakes kept ledgers is taken where it is."""
        if self.ledger.confirmed is None:
            self.ledger.confirmed = confirmed
            self.ledger.save()
        elif confirmed > self.ledger.confirmed:
            raise SourceError(
                self.name,
                f"slot `{self.slot}` was moved to {format_lsn(confirmed)}, past "
                f"{format_lsn(self.ledger.confirmed)} where this lake left it: another consumer (another "
                "lake given the same slot?) took changes this lake never got",
                hint=f"give this source a slot of its own (`sources.{self.name}.slot`, a name no other "
                f"lake uses), then run `lagoa cdc setup {self.name}`: it creates the slot and copies "
                "the tables again",
            )

    def _snapshot(self, tables: list[SourceTable]) -> int:
        """Copy tables the slot already streams (added later, or resynced), from a temporary
        slot's snapshot: its consistent point is exactly where their changes take over."""
        with self.session.exporting(f"{self.slot}_copy_{uuid.uuid4().hex[:8]}", temporary=True) as taken:
            return self._copy(tables, taken)

    def _copy(self, tables: list[SourceTable], taken: Snapshot) -> int:
        rows = copy_tables(
            self.workspace.lake,
            self.name,
            self.session.dsn,
            self.session.secrets,
            tables,
            taken,
            parallel=self.config.parallel,
            run_id=self.run_id,
            now=taken.taken_at,
            reporter=self.reporter,
        )
        self.copied_rows += rows
        for table in tables:  # copied: silver holds each of its columns for every row
            self.ledger.columns[table.name] = [c.name for c in table.columns]
        self.ledger.save()
        return rows

    # -- the tables' columns ------------------------------------------------------------------

    def _reconcile(self, tables: list[SourceTable]) -> list[str]:
        """At start: say which columns were dropped at the source since the last run (silver
        keeps them), then fill the columns added since (:meth:`_refill`)."""
        lake = self.workspace.lake
        for table in tables:
            held = lake.columns(f"silver.{table.name}") or []
            self.ledger.columns.setdefault(table.name, held)
            mirror = self.decoder.mirrors[table.name]
            mirror.dropped |= set(self.ledger.dropped.get(table.name, []))
            source = {c.name for c in table.columns}
            for gone in [c for c in held if c not in source and c not in mirror.dropped]:
                self.say(dropped_column(table, gone))
                mirror.dropped.add(gone)
        self._keep_dropped()
        return self._refill()

    def _keep_dropped(self) -> None:
        """Record the dropped columns reported, so that the next start does not report them again."""
        dropped = {n: sorted(m.dropped) for n, m in self.decoder.mirrors.items() if m.dropped}
        if dropped != self.ledger.dropped:
            self.ledger.dropped = dropped
            self.ledger.save()

    def _refill(self) -> list[str]:
        """Copy again, from a snapshot, each table that gained a column its existing rows got
        values for with no change on the stream (added with a default, constant or volatile, or
        as an identity): only a copy gives every row the value Postgres gave it. Checked at start
        and after every flush, against the catalog, so a column is noticed even when no change
        of its table follows. Returns what it did."""
        mirrors = list(self.decoder.mirrors.values())
        catalog = catalog_columns(self.session, [m.table.oid for m in mirrors])
        stale: dict[Mirror, list[str]] = {}
        for mirror in mirrors:
            now, seen = catalog[mirror.table.oid], self.ledger.columns.get(mirror.table.name, [])
            if not now:
                continue  # dropped (or created again): the stream says so
            added = [c for c in now if c not in seen]
            if any(now[c] for c in added):
                stale[mirror] = [c for c in added if now[c]]
                continue
            if added:  # NULL in every row: silver gets the column now, not at its first change
                mirror.table = self._describe(mirror)
                lake_tables(self.workspace.lake, mirror.table, hint=self._resync_hint(mirror.table))
            if added or any(c not in now for c in seen):
                self.ledger.columns[mirror.table.name] = [c for c in seen if c in now] + added
                self.ledger.save()
        if not stale:
            return []
        tables = [self._describe(m) for m in stale]
        rows = self._snapshot(tables)
        for mirror, table in zip(stale, tables, strict=True):
            mirror.table = table
        what = "; ".join(
            f"{', '.join(f'`{c}`' for c in columns)} to `{m.table.schema}.{m.table.name}`"
            for m, columns in stale.items()
        )
        return [
            f"column(s) added with a default ({what}): the rows already there got values that no "
            f"change carries, so {', '.join(t.name for t in tables)} were copied again from a snapshot: "
            f"{rows:,} rows"
        ]

    def _describe(self, mirror: Mirror) -> SourceTable:
        table = mirror.table
        return describe(
            self.session.con, self.name, self.config, f"{table.schema}.{table.name}", generated=False
        )

    def _resync_hint(self, table: SourceTable) -> str:
        return f"copy the table again: `lagoa cdc resync {self.name} {table.name}`"

    # -- status and drop -----------------------------------------------------------------------

    def status(self, *, peek: bool = True) -> Status:
        """The slot's lag and each table's last LSN; fails with the fix when the server cannot
        replicate (a slot's state means nothing there)."""
        self.check()
        return slot_status(
            self.session,
            self.workspace,
            lambda: self.config.entities() or sorted(self.decoder.mirrors) or listed(self.session),
            peek=peek,
        )

    def retained_warning(self, status: Status) -> str | None:
        return retained_warning(self.session, status)

    def drop(self) -> list[str]:
        """Drop the slot and the publication (the lake tables stay)."""
        self.lock()
        done = self.session.drop()
        self.ledger.confirmed = None  # a new slot of that name starts afresh
        self.ledger.save()
        return done

    # -- replication ---------------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Apply the committed transactions waiting in the slot (up to ``flush_rows`` changes)."""
        result = FlushResult()
        upto, confirmed = self.session.position()
        self._claim(confirmed)
        limit = self.config.flush_rows
        messages = self.session.peek(upto, limit)
        result.more = len(messages) >= limit
        batch = self.decoder.collect(messages, self.applier.held())
        result.transactions = len(batch.ends)
        result.committed_at = [begin.committed_at for begin in batch.begins]
        if batch.changes:
            result.lsn = batch.ends[-1]
            for mirror, change_set in batch.changes.items():
                result.tables[mirror.table.name] = self.applier.apply(
                    mirror, change_set, batch.begins, batch.ends
                )
            result.changes = sum(result.tables.values())
        self._keep_dropped()
        for line in self._refill():
            self.say(line)
        # Advance only to a position decoded here: the end of a transaction, or a heartbeat.
        # Decoding reads flushed WAL only, and an asynchronous commit is written (counted in
        # pg_current_wal_lsn) before it is flushed: advancing to the server's position would skip it.
        if batch.decoded > confirmed:
            self.ledger.confirmed = batch.decoded  # recorded first: a crash leaves the slot behind it
            self.ledger.save()
            self.session.advance(batch.decoded)
        elif not batch.ends and upto - confirmed >= HEARTBEAT_BYTES:
            self.session.heartbeat()
        return result

    def resync(self, tables: list[str]) -> list[str]:
        """Rebuild the mirrors of ``tables`` from a new snapshot (after an incompatible change)."""
        self.check()
        self.lock()
        chosen = [t for t in describe_tables(self.session) if t.name in tables]
        unknown = set(tables) - {t.name for t in chosen}
        if unknown:
            raise self.session.error(
                f"not a table of this source: {', '.join(sorted(unknown))}",
                f"pick from {', '.join(listed(self.session))}",
            )
        lake = self.workspace.lake
        for table in chosen:
            for identifier in (f"silver.{table.name}", f"bronze.{table.name}__changes"):
                if lake.table(identifier) is not None:
                    lake.drop_table(identifier)
        rows = self._snapshot(chosen)
        for table in chosen:
            self.decoder.track(table)
            mirror = self.decoder.mirrors[table.name]
            mirror.table, mirror.dropped = table, set()  # the mirror starts afresh
        return [f"copied {', '.join(t.name for t in chosen)} again: {rows:,} rows"]


def follow(
    replicator: Replicator,
    stop: threading.Event,
    *,
    on_flush: Callable[[FlushResult], object] | None = None,
    once: bool = False,
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
            replicator.say(f"{busy}; trying again in {interval} s")
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
    workspace: Workspace, name: str, config: PostgresSource, *, run_id: str, reporter: Reporter
) -> SyncResult:
    """The ``ingest`` step of a CDC source: set up what is missing, then apply every change
    committed so far."""
    with Replicator(workspace, name, config, run_id=run_id, reporter=reporter) as replicator:
        for line in replicator.setup():
            reporter.stage(name, line)
        result = follow(replicator, threading.Event(), once=True)
    if result.changes:
        reporter.stage(
            name, f"applied {result.changes:,} change(s) from {result.transactions:,} transaction(s)"
        )
    return SyncResult(replicator.copied_rows, result.changes, result.transactions)
