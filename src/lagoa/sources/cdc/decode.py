"""From the slot's messages to per-table change sets: the transactions in commit order, each
table's shape as Postgres last described it, and the values an update left out (TOAST) filled in
from earlier changes of the same flush."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lagoa.core.report import Reporter
from lagoa.sources.cdc.slot import HEARTBEAT, SlotSession
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
from lagoa.sources.postgres import Column, SourceTable

if TYPE_CHECKING:
    import pyarrow as pa


class ChangeSet:
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
        import pyarrow as pa  # only once there are changes: a replicator starts without it

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


def dropped_column(table: SourceTable, column: str) -> str:
    """What is said of a column dropped at the source (seen on the stream, or at start)."""
    return (
        f"column `{column}` was dropped from `{table.schema}.{table.name}`: silver keeps it, "
        "NULL in rows changed from now on"
    )


@dataclass(eq=False)
class Mirror:
    """One replicated table: its shape as last described by Postgres, and the columns dropped
    since Lagoa started following it."""

    table: SourceTable
    dropped: set[str] = field(default_factory=set)


@dataclass
class Decoded:
    """One flush's messages, decoded."""

    changes: dict[Mirror, ChangeSet]
    """Per table, its changes, in commit order."""
    begins: list[Begin]
    ends: list[int]
    """Where each transaction ended (its changes' ``lagoa_lsn``)."""
    decoded: int
    """The last position decoded: a transaction's end or a heartbeat (0 if none)."""


class Decoder:
    """Decodes the slot's messages for the tables it tracks (other tables of the publication
    are left out), following their shapes as Postgres describes them."""

    def __init__(self, session: SlotSession, reporter: Reporter) -> None:
        self.session = session
        self.reporter = reporter
        self.mirrors: dict[str, Mirror] = {}
        self.by_oid: dict[int, Mirror] = {}
        self.shapes: dict[int, tuple[str, ...]] = {}
        """Per relation, its column names as last described by Postgres."""
        self.types: dict[int, str] = {}

    def track(self, table: SourceTable) -> None:
        self.mirrors[table.name] = self.mirrors.get(table.name) or Mirror(table)

    def collect(self, messages: list[bytes], held: Callable[[Mirror], int]) -> Decoded:
        """Decode the messages into per-table change sets, in commit order, leaving out the
        transactions each mirror already holds (``held``: the LSN its silver table holds)."""
        changes: dict[Mirror, ChangeSet] = {}
        begins: list[Begin] = []
        ends: list[int] = []
        decoded = 0
        txn = -1
        seq = 0
        for data in messages:
            message = decode(data)
            if isinstance(message, Change):
                mirror = self.by_oid.get(message.relation)
                if mirror is None or begins[-1].final_lsn < held(mirror):
                    continue
                change_set = changes.get(mirror)
                shape = self.shapes[message.relation]
                if change_set is None:
                    change_set = changes[mirror] = ChangeSet(shape, mirror.table.key)
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
                mirror = self.relation(message)
                if mirror is not None:
                    self.shapes[message.oid] = tuple(c.name for c in message.columns)
            elif isinstance(message, Truncate):
                for oid in message.relations:
                    mirror = self.by_oid.get(oid)
                    if mirror is None or begins[-1].final_lsn < held(mirror):
                        continue
                    change_set = changes.get(mirror) or changes.setdefault(
                        mirror, ChangeSet(self.shapes[oid], mirror.table.key)
                    )
                    seq += change_set.truncate(txn, seq)
        return Decoded(changes, begins, ends, decoded)

    def relation(self, message: Relation) -> Mirror | None:
        """Track a table's shape: columns added, dropped or retyped at the source."""
        name = self.session.name
        mirror = next((m for m in self.mirrors.values() if m.table.oid == message.oid), None)
        qualified = f"{message.schema}.{message.name}"
        if mirror is not None and (mirror.table.schema, mirror.table.name) != (message.schema, message.name):
            raise self.session.error(
                f"table `{mirror.table.schema}.{mirror.table.name}` was renamed to `{qualified}`",
                f"list `{qualified}` in `sources.{name}.tables`, then run `lagoa cdc setup` (it "
                "copies the table again)",
            )
        named = self.mirrors.get(message.name)
        if mirror is None and named is not None and named.table.schema == message.schema:
            raise self.session.error(
                f"table `{qualified}` was dropped and created again since Lagoa described it",
                "run `lagoa cdc setup`: it copies the new table (changes it had before being "
                "published again were never sent)",
            )
        if mirror is None:
            return None  # a table of the publication this source does not mirror
        self.by_oid[message.oid] = mirror
        unknown = [c.type_oid for c in message.columns if c.type_oid not in self.types]
        if unknown:
            self.types.update(self.session.type_names())
        columns = []
        for c in message.columns:
            numeric = self.types.get(c.type_oid) == "numeric" and c.type_modifier > 0
            precision = ((c.type_modifier - 4) >> 16) & 0xFFFF if numeric else None
            scale = (c.type_modifier - 4) & 0xFFFF if numeric else None
            columns.append(Column(c.name, self.types.get(c.type_oid, "text"), precision, scale))
        before = {c.name for c in mirror.table.columns} | mirror.dropped
        now = {c.name for c in columns}
        for gone in sorted(before - now - mirror.dropped):
            self.reporter.stage(name, dropped_column(mirror.table, gone))
            mirror.dropped.add(gone)
        mirror.table = dataclasses.replace(mirror.table, columns=columns)
        return mirror
