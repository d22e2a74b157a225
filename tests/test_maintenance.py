"""Snapshot expiry with orphan cleanup, and compaction."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lagoa.lake.catalog import local_path
from lagoa.lake.maintenance import expire
from tests.conftest import ORDERS_CONFIG, MakeProject, count

HEADER = "order_id,amount,ordered_at,updated_at\n"


def rows(start: int, n: int, day: int = 1) -> str:
    return HEADER + "".join(
        f"{i},{i}.5,2024-06-0{day} 10:00:00,2024-06-0{day} 10:00:00\n" for i in range(start, start + n)
    )


def test_expire_keeps_the_ledger_and_deletes_only_unreferenced_old_files(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": rows(1, 5)})
    project.ingest()
    (project.root / "data/orders_2.csv").write_text(
        rows(1, 5, day=2).replace(".5,", ".7,")
    )  # updates: rewrites
    project.ingest()
    silver = project.lake.table("silver.orders")
    assert silver is not None and len(silver.metadata.snapshots) == 2
    before = sorted(project.query("select * from silver.orders order by 1")[1])
    data = sorted(project.lake.data_files(silver))
    stray = os.path.join(os.path.dirname(data[0]), "stray.parquet")
    with open(stray, "wb") as out:  # a file a killed writer left behind, long ago
        out.write(b"PAR1")
    old = time.time() - 3600
    os.utime(stray, (old, old))

    result = expire(project.lake, "silver.orders", datetime.now(UTC) + timedelta(seconds=1))
    assert result.expired_snapshots == 2 and result.kept_snapshots == 1
    assert not os.path.exists(stray)
    assert result.deleted_files >= 2  # the stray file and the first merge's rewritten file
    table = project.lake.table("silver.orders")
    assert table is not None
    assert all(os.path.exists(path) for path in project.lake.data_files(table))
    assert sorted(project.query("select * from silver.orders order by 1")[1]) == before

    # The batches stay known: ingesting the same files again adds nothing.
    again = project.ingest().sources[0]
    assert again.bronze_rows == 0 and len(again.skipped_files) == 2
    assert count(project, "select count(*) from silver.orders") == 5


def test_expire_leaves_recent_files_of_a_running_writer(make_project: MakeProject) -> None:
    project = make_project(ORDERS_CONFIG, {"data/orders_1.csv": rows(1, 3)})
    project.ingest()
    table = project.lake.table("silver.orders")
    assert table is not None
    staged = Path(project.lake.staging_folder(table)) / "part-new.parquet"
    staged.write_bytes(b"PAR1")
    expire(project.lake, "silver.orders", datetime.now(UTC) - timedelta(minutes=5))
    assert staged.exists()


def test_optimize_merges_small_files_without_changing_rows(make_project: MakeProject) -> None:
    config = ORDERS_CONFIG.replace("    primary_key: [order_id]\n    ordering: updated_at\n", "")
    project = make_project(config, {"data/orders_1.csv": rows(1, 4)})
    for i in range(2, 5):
        project.ingest()
        (project.root / f"data/orders_{i}.csv").write_text(rows(i * 10, 4))
    project.ingest()
    before = sorted(project.query("select * from silver.orders")[1])
    table = project.lake.table("silver.orders")
    assert table is not None
    files = project.lake.data_files(table)
    result = project.optimize("silver.orders")
    assert result.files_before == len(files) == 4 and result.files_after == 1 and result.rows == 16
    assert sorted(project.query("select * from silver.orders")[1]) == before
    table = project.lake.table("silver.orders")
    assert table is not None and {local_path(p) for p in project.lake.data_files(table)}.isdisjoint(files)
