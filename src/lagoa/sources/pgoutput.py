"""A decoder for Postgres's built-in logical replication output (``pgoutput``, protocol 1).

Only what a mirror needs: relations (table shapes), transaction boundaries, and row changes with
their values as Postgres's text representation. The message layouts are documented in
"Logical Replication Message Formats" of the Postgres manual.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class Unchanged:
    """A TOASTed value the update did not touch, so Postgres did not send it."""

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED = Unchanged()
Value = str | None | Unchanged


@dataclass(frozen=True)
class RelationColumn:
    name: str
    type_oid: int
    type_modifier: int
    part_of_key: bool


@dataclass(frozen=True)
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True)
class Begin:
    final_lsn: int
    committed_at: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    commit_lsn: int
    end_lsn: int
    committed_at: datetime


@dataclass(frozen=True)
class Change:
    """An insert (``c``), update (``u``) or delete (``d``) of one row.

    ``row`` is the new row (for a delete: the old key, other columns None); ``old_key`` is the
    old key of an update that changed it (else None)."""

    op: str
    relation: int
    row: tuple[Value, ...]
    old_key: tuple[Value, ...] | None = None


@dataclass(frozen=True)
class Truncate:
    relations: tuple[int, ...]


@dataclass(frozen=True)
class LogicalMessage:
    """A message written by ``pg_logical_emit_message`` (sent with the ``messages`` option)."""

    lsn: int
    prefix: str
    transactional: bool


Message = Relation | Begin | Commit | Change | Truncate | LogicalMessage | None

_U32 = struct.Struct("!I")
_U16 = struct.Struct("!H")
_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!xQQq")
_LSN = struct.Struct("!Q")


def timestamp(micros: int) -> datetime:
    return POSTGRES_EPOCH + timedelta(microseconds=micros)


def _string(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(0, at)
    return data[at:end].decode(), end + 1


def _tuple(data: bytes, at: int) -> tuple[tuple[Value, ...], int]:
    (count,) = _U16.unpack_from(data, at)
    at += 2
    values: list[Value] = []
    for _ in range(count):
        kind = data[at]
        at += 1
        if kind == 0x74 or kind == 0x62:  # 't' text, 'b' binary (not requested)
            (length,) = _U32.unpack_from(data, at)
            at += 4
            values.append(data[at : at + length].decode())
            at += length
        elif kind == 0x6E:  # 'n' null
            values.append(None)
        else:  # 'u' unchanged TOASTed value
            values.append(UNCHANGED)
    return tuple(values), at


def decode(data: bytes) -> Message:
    """One message; None for those a mirror ignores (origin, type)."""
    kind = data[0]
    if kind == 0x49:  # 'I' insert: relation, 'N', new tuple
        (relation,) = _U32.unpack_from(data, 1)
        row, _ = _tuple(data, 6)
        return Change("c", relation, row)
    if kind == 0x55:  # 'U' update: relation, optional 'K'/'O' old tuple, 'N', new tuple
        (relation,) = _U32.unpack_from(data, 1)
        old: tuple[Value, ...] | None = None
        at = 5
        if data[at] in (0x4B, 0x4F):
            old, at = _tuple(data, at + 1)
        row, _ = _tuple(data, at + 1)
        return Change("u", relation, row, old)
    if kind == 0x44:  # 'D' delete: relation, 'K'/'O', old tuple
        (relation,) = _U32.unpack_from(data, 1)
        row, _ = _tuple(data, 6)
        return Change("d", relation, row)
    if kind == 0x42:  # 'B' begin
        final_lsn, micros, xid = _BEGIN.unpack_from(data, 1)
        return Begin(final_lsn, timestamp(micros), xid)
    if kind == 0x43:  # 'C' commit
        commit_lsn, end_lsn, micros = _COMMIT.unpack_from(data, 1)
        return Commit(commit_lsn, end_lsn, timestamp(micros))
    if kind == 0x52:  # 'R' relation
        (oid,) = _U32.unpack_from(data, 1)
        schema, at = _string(data, 5)
        name, at = _string(data, at)
        identity = chr(data[at])
        (count,) = _U16.unpack_from(data, at + 1)
        at += 3
        columns = []
        for _ in range(count):
            flags = data[at]
            column, at = _string(data, at + 1)
            type_oid, modifier = struct.unpack_from("!Ii", data, at)
            at += 8
            columns.append(RelationColumn(column, type_oid, modifier, bool(flags & 1)))
        return Relation(oid, schema, name, identity, tuple(columns))
    if kind == 0x54:  # 'T' truncate
        (count,) = _U32.unpack_from(data, 1)
        return Truncate(struct.unpack_from(f"!{count}I", data, 6))
    if kind == 0x4D:  # 'M' message: flags, LSN, prefix, content
        (lsn,) = _LSN.unpack_from(data, 2)
        prefix, _ = _string(data, 10)
        return LogicalMessage(lsn, prefix, bool(data[1] & 1))
    return None
