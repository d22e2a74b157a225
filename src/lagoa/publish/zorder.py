"""Sort keys for the rows of a data file: linear, or Z-order over several columns.

Z-order interleaves the bits of each column's rank, so rows close in every column land close
together: min/max statistics of each file then cover a narrow range of every Z-ordered column,
and a point query on any of them skips most files. Ranks (not raw values) give columns of any
type and spread the same number of bits.
"""

from __future__ import annotations

from lagoa.engine.connection import quote_identifier

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
