"""Sort keys for the rows of a data file: linear, or Z-order over several columns.

Z-order interleaves the bits of each column's rank, so rows close in every column land close
together: min/max statistics of each file then cover a narrow range of every Z-ordered column,
and a point query on any of them skips most files. Ranks (not raw values) give columns of any
type and spread the same number of bits.
"""

from __future__ import annotations

from lagoa.core.sql import quote_identifier

KEY_BITS = 62
"""Bits of a Z-order key (a BIGINT), shared among its columns."""


def with_zorder(relation: str, columns: list[str]) -> str:
    """``relation`` plus ``_lagoa_z``, the Z-order key over ``columns``."""
    k = len(columns)
    bits = KEY_BITS // k
    top = (1 << bits) - 1
    ranks = ", ".join(
        f"dense_rank() OVER (ORDER BY {quote_identifier(c)}) - 1 AS _lagoa_r{i}"
        for i, c in enumerate(columns)
    )
    scaled = ", ".join(
        f"CAST(CAST(_lagoa_r{i} AS HUGEINT) * {top} // greatest(max(_lagoa_r{i}) OVER (), 1) AS BIGINT) AS _lagoa_s{i}"
        for i in range(k)
    )
    key = " | ".join(f"(((_lagoa_s{i} >> {j}) & 1) << {j * k + i})" for j in range(bits) for i in range(k))
    hidden = ", ".join(f"_lagoa_r{i}, _lagoa_s{i}" for i in range(k))
    return (
        f"SELECT * EXCLUDE ({hidden}), {key} AS _lagoa_z FROM "
        f"(SELECT *, {scaled} FROM (SELECT *, {ranks} FROM ({relation})))"
    )


def file_layout(
    rows: str, keys: list[str], zorder: list[str], sort_by: list[str], rows_per_file: int
) -> tuple[str, list[str], tuple[str, ...]]:
    """How to write ``rows`` into a table's files: (the rows with their sort key, the partition
    expressions to write by, the helper columns to leave out of the files).

    Inside each partition (``keys``) rows follow the Z-order or ``sort_by``, and a new file starts
    every ``rows_per_file`` rows: the chunk number is one more partition expression. The window's
    output comes sorted by partition then order, the order the files are written in.
    """
    hidden: tuple[str, ...] = ()
    if zorder:
        rows, order, hidden = with_zorder(rows, zorder), ["_lagoa_z"], ("_lagoa_z",)
    else:
        order = [quote_identifier(c) for c in sort_by]
    within = f"ORDER BY {', '.join(order)}" if order else ""
    partition = f"PARTITION BY {', '.join(keys)}" if keys else ""
    chunk = f"(row_number() OVER ({partition} {within}) - 1) // {rows_per_file}"
    return rows, [*keys, chunk], hidden
