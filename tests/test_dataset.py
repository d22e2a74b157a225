"""CTAS-style publish (reference architecture C): a Parquet dataset replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from lagoa.orchestrate.project import Project
from tests.conftest import copy_example


@pytest.fixture
def orders(tmp_path: Path) -> Project:
    folder = tmp_path / "orders_summary"
    copy_example("orders_summary", folder)
    project = Project.load(folder)
    project.ingest()
    project.transform()
    return project


def read(location: Path) -> list[tuple[object, ...]]:
    pattern = str(location / "**" / "*.parquet")
    return duckdb.sql(
        f"select order_date, status, orders, units, revenue from read_parquet('{pattern}', hive_partitioning=true) "
        "order by order_date, status"
    ).fetchall()


def test_the_summary_is_a_partitioned_dataset_equal_to_the_model(orders: Project) -> None:
    location = Path(orders.storage.location("exports/orders_summary"))
    assert location.is_symlink()
    days = {p.name for p in location.iterdir()}
    assert len(days) == 30 and all(d.startswith("order_date=") for d in days)
    _, model = orders.query(
        "select order_date, status, orders, units, revenue from main.orders_summary order by 1, 2"
    )
    assert read(location) == model
    _, view = orders.query("select sum(orders) from gold.orders_summary")
    assert view == [(sum(r[2] for r in model),)]
    _, silver = orders.query("select count(*) from silver.orders")
    assert view[0][0] == silver[0][0]


def test_publishing_again_swaps_versions_atomically_and_keeps_the_previous_one(orders: Project) -> None:
    location = Path(orders.storage.location("exports/orders_summary"))
    first = Path(os.readlink(location)).name
    old_files = sorted(location.resolve().rglob("*.parquet"))  # a reader that resolved the link before
    assert orders.publish(run_id=first)[0].skipped  # the same run again: nothing happens

    second = orders.publish(run_id="run-second")[0]
    assert not second.skipped and Path(os.readlink(location)).name == "run-second"
    assert all(path.exists() for path in old_files)  # the previous version stays readable
    assert read(location) == read(location.parent / "orders_summary.versions" / first)

    # A publish killed midway leaves a partial version folder: the location never points at it.
    partial = location.parent / "orders_summary.versions" / "run-killed"
    (partial / "order_date=2024-06-01").mkdir(parents=True)
    (partial / "order_date=2024-06-01" / "part-x.parquet").write_bytes(b"PAR1")
    assert Path(os.readlink(location)).name == "run-second"

    orders.publish(run_id="run-third")
    versions = {p.name for p in (location.parent / "orders_summary.versions").iterdir()}
    assert versions == {"run-second", "run-third"}  # the current one and the one before
