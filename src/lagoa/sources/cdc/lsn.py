"""WAL positions: as Postgres writes them (``16/B374D848``), and as a lake table's commits hold them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lagoa.core.names import LSN
from lagoa.lake.catalog import Lake

if TYPE_CHECKING:
    from pyiceberg.table import Table


def format_lsn(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def table_lsn(lake: Lake, table: Table | None) -> int | None:
    """The WAL position the table's newest commit holds (None before its first copy)."""
    value = lake.latest(table, LSN)
    return int(value) if value is not None else None


def held_lsn(lake: Lake, identifier: str) -> int | None:
    """:func:`table_lsn` of the table named ``identifier`` as it is now, without loading it when
    the lake can read its metadata directly."""
    value = lake.newest(identifier, LSN)
    return int(value) if value is not None else None
