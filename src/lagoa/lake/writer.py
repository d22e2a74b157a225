"""DuckDB writes a table's data files: Parquet with Iceberg field ids, one partition per file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from lagoa.core.sql import quote_literal
from lagoa.lake.datafiles import FileStats, remember

if TYPE_CHECKING:
    from pyiceberg.table import Table

TARGET_FILE_SIZE = "512MB"


@dataclass(frozen=True)
class Written:
    rows: int
    files: list[str]


@dataclass(frozen=True)
class FileLayout:
    """How a table's data files are written: Iceberg field ids and the Parquet codec."""

    ids: dict[str, int]
    compression: str
    level: int | None


def layout(table: Table) -> FileLayout:
    from lagoa.lake.catalog import COMPRESSION, COMPRESSION_LEVEL

    properties = table.metadata.properties
    level = properties.get(COMPRESSION_LEVEL)
    return FileLayout(
        {f.name: f.field_id for f in table.schema().fields},
        properties.get(COMPRESSION, "zstd"),
        int(level) if level else None,
    )


def write_parquet(
    con: duckdb.DuckDBPyConnection,
    select: str,
    folder: str,
    files: FileLayout,
    partitions: list[str] | None = None,
    hidden: tuple[str, ...] = (),
) -> Written:
    """Stream ``select`` into Parquet files under ``folder`` (a path or ``s3://`` location);
    returns the rows and the non-empty files.

    ``partitions`` are DuckDB expressions; each output file then holds a single value of each,
    which is how pyiceberg derives a file's partition from its statistics. ``hidden`` columns of
    ``select`` are left out of the files (partition expressions may still read them).
    """
    id_map = ", ".join(f"{quote_literal(name)}: {field_id}" for name, field_id in files.ids.items())
    options = [
        "FORMAT parquet",
        f"COMPRESSION {files.compression}",
        *([f"COMPRESSION_LEVEL {files.level}"] if files.level and files.compression == "zstd" else []),
        f"FIELD_IDS {{{id_map}}}",
        "FILENAME_PATTERN 'part-{uuid}'",
        "OVERWRITE_OR_IGNORE true",
        "RETURN_STATS true",  # each file's name, rows and column statistics: the commit reads no footer
    ]
    if partitions:
        keys = [f"_lagoa_p{i}" for i in range(len(partitions))]
        options.append(f"PARTITION_BY ({', '.join(keys)})")
        star = f"* EXCLUDE ({', '.join(hidden)})" if hidden else "*"
        select = f"SELECT {star}, {', '.join(f'{e} AS {k}' for e, k in zip(partitions, keys, strict=True))} FROM ({select})"
    else:
        options.append(f"FILE_SIZE_BYTES '{TARGET_FILE_SIZE}'")
    stats = con.execute(f"COPY ({select}) TO {quote_literal(folder)} ({', '.join(options)})").fetchall()
    paths = []
    for name, count, size, _footer, columns, *_ in stats:
        # DuckDB may leave a file with no rows when a thread had nothing to write: keep them out of the table.
        if count:
            paths.append(str(name))
            remember(str(name), FileStats(int(count), int(size), dict(columns or {})))
    return Written(sum(int(count) for _, count, *_ in stats), sorted(paths))
