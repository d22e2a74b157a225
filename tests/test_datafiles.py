"""A commit builds each new file's manifest entry from DuckDB's own statistics of the file it
wrote: the entry must be the one pyiceberg reads from the file's footer, for every type Lagoa
writes, long strings (bounds truncated to 16 characters), NaN, NULL-only columns and partitions."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from pyiceberg.io.pyarrow import parquet_file_to_data_file

from lagoa.lake.catalog import Lake, sqlite_uri
from lagoa.lake.datafiles import data_file, take
from lagoa.lake.partitioning import PartitionField, partition_spec
from lagoa.lake.schema import iceberg_schema, iceberg_type
from lagoa.lake.writer import layout, write_parquet
from lagoa.storage import open_storage

COLUMNS = [
    ("id", "long"),
    ("small", "int"),
    ("amount", "decimal(12,2)"),
    ("ratio", "double"),
    ("score", "float"),
    ("name", "string"),
    ("note", "string"),
    ("day", "date"),
    ("at", "timestamp"),
    ("at_tz", "timestamptz"),
    ("flag", "boolean"),
    ("empty", "long"),
]
ROWS = """
SELECT range AS id, CAST(range % 7 - 3 AS INTEGER) AS small, CAST(range * 1.25 - 40 AS DECIMAL(12,2)) AS amount,
       CASE WHEN range = 5 THEN 'NaN'::DOUBLE ELSE range / 3 END AS ratio, CAST(range / 7 AS FLOAT) AS score,
       'región ' || range AS name, repeat('ü', 20) || range AS note,
       DATE '2024-06-01' + CAST(range % 3 AS INTEGER) AS day,
       TIMESTAMP '2024-06-01 10:00:00.123456' + INTERVAL (range) MINUTE AS at,
       TIMESTAMPTZ '2024-06-01 23:30:00+00' + INTERVAL (range) HOUR AS at_tz,
       range % 2 = 0 AS flag, CAST(NULL AS BIGINT) AS empty
FROM range(40)
"""

COMPARED = (
    "record_count",
    "file_size_in_bytes",
    "column_sizes",
    "value_counts",
    "null_value_counts",
    "lower_bounds",
    "upper_bounds",
    "partition",
)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(sqlite_uri("sqlite:///catalog.db", tmp_path), open_storage(str(tmp_path / "lake"), tmp_path))


@pytest.mark.parametrize(
    "partition_by", [[], ["day(at)"], ["day", "name"]], ids=["unpartitioned", "day", "identity"]
)
def test_entries_from_duckdbs_statistics_are_those_read_from_the_footers(
    lake: Lake, partition_by: list[str]
) -> None:
    schema = iceberg_schema([(name, iceberg_type(kind)) for name, kind in COLUMNS])
    fields = [PartitionField.parse(text) for text in partition_by]
    table = lake.create_table("silver.kinds", schema, partition_spec(fields, schema) if fields else None)
    con = duckdb.connect()
    with lake.write(table, properties={}) as staged:
        written = write_parquet(
            con, ROWS, staged.folder, layout(table), [field.duckdb_expression() for field in fields]
        )
        staged.add = written.files
        for path in written.files:
            stats = take(path)
            assert stats is not None, "write_parquet keeps what DuckDB said of each file"
            mine = data_file(table.metadata, path, stats)
            assert mine is not None
            theirs = parquet_file_to_data_file(table.io, table.metadata, path)
            differing = {
                a: (getattr(mine, a), getattr(theirs, a))
                for a in COMPARED
                if getattr(mine, a) != getattr(theirs, a)
            }
            assert not differing, differing
            # NaN in `ratio` in one file: no bounds for it there, as pyiceberg decides too.
    committed = staged.committed
    assert committed is not None
    assert sum(task.file.record_count for task in committed.scan().plan_files()) == 40


def test_a_commit_of_files_duckdb_did_not_describe_reads_their_footers(lake: Lake, tmp_path: Path) -> None:
    schema = iceberg_schema([("id", iceberg_type("long"))])
    table = lake.create_table("bronze.outside", schema)
    con = duckdb.connect()
    with lake.write(table, properties={}) as staged:
        written = write_parquet(con, "SELECT range AS id FROM range(10)", staged.folder, layout(table))
        for path in written.files:
            take(path)  # forgotten: the commit must read the footer instead
        staged.add = written.files
    committed = staged.committed
    assert committed is not None
    (entry,) = [task.file for task in committed.scan().plan_files()]
    assert entry.record_count == 10
    assert entry.lower_bounds and entry.upper_bounds  # the footer's statistics, read back


def test_a_table_read_from_its_metadata_file_is_the_table_pyiceberg_loads(tmp_path: Path) -> None:
    """A step with nothing to do asks the lake for a table's ledger, columns and rows; on a SQLite
    catalog the lake reads them from the current metadata file without loading the table."""
    catalog, root = sqlite_uri("sqlite:///catalog.db", tmp_path), str(tmp_path / "lake")
    writer = Lake(catalog, open_storage(root, tmp_path))
    table = writer.create_table("bronze.grown", iceberg_schema([("id", iceberg_type("long"))]))
    con = duckdb.connect()
    for batch, rows in (("b1", 3), ("b2", 4)):
        with writer.write(table, properties={"lagoa.batches": [batch], "lagoa.lsn": str(rows)}) as staged:
            others = "".join(f", NULL::VARCHAR AS {f.name}" for f in table.schema().fields if f.name != "id")
            select = f"SELECT range AS id{others} FROM range({rows})"
            written = write_parquet(con, select, staged.folder, layout(table))
            staged.add = written.files
        assert staged.committed is not None
        table = writer.evolve(
            staged.committed, [("id", iceberg_type("long")), (f"after_{batch}", iceberg_type("string"))]
        )

    reader = Lake(catalog, open_storage(root, tmp_path))  # a new process's lake: nothing loaded
    assert reader.ledger("bronze.grown") == {"b1", "b2"} == writer.committed(writer.table("bronze.grown"))
    assert reader.columns("bronze.grown") == ["id", "after_b1", "after_b2"]
    assert reader.rows("bronze.grown") == 7 == writer.describe(table).rows
    assert reader.newest("bronze.grown", "lagoa.lsn") == "4" == writer.latest(table, "lagoa.lsn")
    assert reader.newest("bronze.grown", "lagoa.other") is None
    assert reader.identifiers() == ["bronze.grown"]
    none = "bronze.none"
    assert (reader.ledger(none), reader.columns(none), reader.rows(none), reader.newest(none, "k")) == (
        set(),
        None,
        0,
        None,
    )
    assert "_opened" not in reader.__dict__  # none of it opened the catalog
