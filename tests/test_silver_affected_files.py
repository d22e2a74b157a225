"""A silver merge reads and rewrites only the files that can hold a key of the batch: found from
the files' key statistics before any join. Which files those are never changes the result."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ORDERS_CONFIG, MakeProject, count

HEADER = "order_id,amount,ordered_at,updated_at\n"
FIRST = (
    HEADER + "1,10,2024-06-01 10:00,2024-06-01 10:00\n2,20,2024-06-01 11:00,2024-06-01 11:00\n"
    "3,30,2024-06-01 12:00,2024-06-01 12:00\n4,40,2024-06-02 10:00,2024-06-02 10:00\n"
    "5,50,2024-06-02 11:00,2024-06-02 11:00\n"
)


def removed_files(project: object) -> int:
    """Data files the silver table's newest commit removed (rewrote)."""
    table = project.lake.table("silver.orders")  # type: ignore[attr-defined]
    summary = table.current_snapshot().summary
    return int(summary.additional_properties.get("deleted-data-files", 0))


def test_new_growing_keys_rewrite_no_file_and_an_update_only_the_file_holding_its_range(
    make_project: MakeProject,
) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": FIRST})
    project.ingest()
    files = project.lake.data_files(project.lake.table("silver.orders"))
    assert len(files) == 2  # one file per day
    (day_one,) = [f for f in files if "2024-06-01" in f]

    # Key 6 lies beyond every file's range: no file is read (the one of keys 1–3, set aside, is
    # not missed) and none is rewritten.
    aside = Path(day_one).with_name("aside")
    Path(day_one).rename(aside)
    (project.root / "data/orders_2.csv").write_text(HEADER + "6,60,2024-06-02 12:00,2024-06-02 12:00\n")
    project.ingest()
    aside.rename(day_one)
    assert removed_files(project) == 0
    assert count(project, "select count(*) from silver.orders") == 6

    (project.root / "data/orders_3.csv").write_text(HEADER + "2,21,2024-06-01 11:00,2024-06-03 09:00\n")
    project.ingest()
    assert removed_files(project) == 1, "only the 2024-06-01 file holds keys 1–3"
    _, rows = project.query("select order_id, amount from silver.orders order by order_id")
    assert rows == [(1, 10.0), (2, 21.0), (3, 30.0), (4, 40.0), (5, 50.0), (6, 60.0)]
