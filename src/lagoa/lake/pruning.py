"""The data files that can hold a batch's keys, found from the files' column statistics before
any join: a merge (silver, a CDC mirror) then reads only those to find the rows it replaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from lagoa.core.sql import quote_identifier
from lagoa.lake.catalog import Lake

if TYPE_CHECKING:
    from pyiceberg.table import Table


def files_for_keys(
    con: duckdb.DuckDBPyConnection, lake: Lake, table: Table, batch: str, column: str
) -> list[str]:
    """The files of ``table`` whose range of ``column`` (the key's first column) overlaps the batch's,
    by the files' column statistics, and those holding NULL in it when the batch does: only they
    can hold a key of the batch. A key that only grows (new orders, events) overlaps no file, and
    no file is read. Integer and text keys are pruned (pyiceberg's evaluator knows truncated text
    bounds); for others every file is a candidate."""
    from pyiceberg.expressions import And, BooleanExpression, GreaterThanOrEqual, IsNull, LessThanOrEqual, Or
    from pyiceberg.types import IntegerType, LongType, StringType

    if not isinstance(table.schema().find_field(column).field_type, IntegerType | LongType | StringType):
        return lake.data_files(table)
    name = quote_identifier(column)
    low, high, nulls = con.execute(
        f"SELECT min({name}), max({name}), count(*) FILTER ({name} IS NULL) FROM {batch}"
    ).fetchone() or (None, None, 0)
    wanted: list[BooleanExpression] = []
    if low is not None:
        wanted.append(
            And(GreaterThanOrEqual(term=column, value=low), LessThanOrEqual(term=column, value=high))
        )
    if nulls:
        wanted.append(IsNull(term=column))
    if not wanted:
        return []
    return lake.data_files(table, wanted[0] if len(wanted) == 1 else Or(*wanted))
