"""Postgres sources in snapshot mode, against a real PostgreSQL 15 started by the test: silver
equals the source tables after a copy and after changes; errors say what to change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lagoa.core.errors import ConfigError, SourceError
from lagoa.orchestrate.project import Project
from tests.conftest import count
from tests.postgres import postgres_server

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, vip boolean);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2), ordered_at timestamptz,
    doc jsonb, tags text[], note varchar(40)
);
CREATE TABLE events (k int, v text);
INSERT INTO customers SELECT g, 'customer ' || g, g % 7 = 0 FROM generate_series(1, 500) g;
INSERT INTO orders SELECT g, g % 500 + 1, round((g * 1.37)::numeric, 2), '2024-06-01 00:00:00+00'::timestamptz + g * interval '1 minute',
    jsonb_build_object('n', g), ARRAY['a', 'b' || g], CASE WHEN g % 3 = 0 THEN NULL ELSE 'note ' || g END
FROM generate_series(1, 20000) g;
INSERT INTO events VALUES (1, 'x'), (2, 'y');
"""


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    with postgres_server() as uri:
        with psycopg.connect(uri, autocommit=True) as con:
            con.execute(SCHEMA)
        yield uri


def project_for(tmp_path: Path, dsn: str, tables: str, extra: str = "") -> Project:
    (tmp_path / "lagoa.yml").write_text(
        f"""
name: pg
sources:
  shop:
    kind: postgres
    dsn: "${{env:SHOP_DSN}}"
    tables: {tables}
{extra}
domains:
  shop: {{sources: [shop]}}
"""
    )
    return Project.load(tmp_path)


def source_rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as con:
        return [tuple(_plain(v) for v in row) for row in con.execute(sql).fetchall()]


def lake_rows(project: Project, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(_plain(v) for v in row) for row in project.query(sql)[1]]


def _plain(value: Any) -> Any:
    if hasattr(value, "astimezone") and getattr(value, "tzinfo", None) is not None:
        return value.astimezone(UTC).isoformat()
    return value


ORDERS = "select id, customer_id, amount, ordered_at, doc::text, tags::text, note from {t} order by id"
LAKE_ORDERS = "select id, customer_id, amount, ordered_at, doc, tags, note from {t} order by id"


def test_a_snapshot_makes_silver_equal_to_the_source_and_follows_changes(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DSN", database)
    project = project_for(tmp_path, database, "[customers, public.orders]")
    project.ingest()
    assert lake_rows(project, LAKE_ORDERS.format(t="silver.orders")) == source_rows(
        database, ORDERS.format(t="orders")
    )
    assert lake_rows(project, "select * from silver.customers order by id") == source_rows(
        database, "select * from customers order by id"
    )

    with psycopg.connect(database, autocommit=True) as con:
        con.execute("UPDATE orders SET amount = amount + 1, note = 'changed' WHERE id % 10 = 0")
        con.execute("DELETE FROM orders WHERE id % 17 = 0")
        con.execute(
            "INSERT INTO orders (id, customer_id, amount) SELECT g, 1, 9.99 FROM generate_series(20001, 20100) g"
        )
        con.execute("DELETE FROM customers WHERE id > 490")
    again = Project.load(tmp_path)
    again.ingest()
    assert lake_rows(again, LAKE_ORDERS.format(t="silver.orders")) == source_rows(
        database, ORDERS.format(t="orders")
    )
    assert count(again, "select count(*) from silver.customers") == 490
    # The change log keeps both copies, every row marked as read from a snapshot.
    assert count(again, "select count(distinct _lagoa_batch_id) from bronze.orders__changes") == 2
    assert lake_rows(again, "select distinct lagoa_op from bronze.orders__changes") == [("r",)]
    lsns = lake_rows(again, "select min(lagoa_lsn), max(lagoa_lsn) from bronze.orders__changes")[0]
    assert lsns[0] < lsns[1]


def test_tables_without_a_key_and_missing_tables_are_refused_with_the_fix(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DSN", database)
    with pytest.raises(ConfigError, match="no primary key") as refused:
        project_for(tmp_path, database, "[events]").ingest()
    assert "ALTER TABLE public.events ADD PRIMARY KEY" in str(refused.value)
    assert "sources.shop.keys.events" in str(refused.value)

    keyed = project_for(tmp_path, database, "[events]", "    keys: {events: [k]}")
    keyed.ingest()
    assert lake_rows(keyed, "select k, v from silver.events order by k") == [(1, "x"), (2, "y")]

    with pytest.raises(ConfigError, match=r"no table `public\.nope`"):
        project_for(tmp_path, database, "[nope]").ingest()


def test_a_connection_failure_names_the_source_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DSN", "postgresql://lagoa:pa55-w0rd@127.0.0.1:1/shop?connect_timeout=2")
    with pytest.raises(SourceError, match="source `shop`: cannot connect") as failed:
        project_for(tmp_path, "", "[orders]").ingest()
    assert "pa55-w0rd" not in str(failed.value)


def test_a_copy_that_fails_on_one_table_commits_no_table(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One table at a time, `customers` first: it is copied before `prices` fails, and still
    nothing is committed, so the lake never holds one table of the snapshot without the other."""
    monkeypatch.setenv("SHOP_DSN", database)
    with psycopg.connect(database, autocommit=True) as con:
        con.execute("CREATE TABLE prices (id int PRIMARY KEY, price numeric(8,2))")
        con.execute("INSERT INTO prices VALUES (1, 1.5), (2, 'NaN')")  # NaN has no decimal form
    try:
        project = project_for(tmp_path, database, "[customers, prices]", "    parallel: 1")
        with pytest.raises(SourceError, match=r"copying `public.prices` failed: column `price`"):
            project.ingest()
        for identifier in ("silver.customers", "bronze.customers__changes", "silver.prices"):
            table = project.lake.table(identifier)
            assert table is None or table.current_snapshot() is None, identifier
        root = Path(project.storage.location("."))
        assert not [*root.rglob("*.parquet"), *root.rglob("commit-*")]  # nothing left behind

        with psycopg.connect(database, autocommit=True) as con:
            con.execute("UPDATE prices SET price = 2.5 WHERE id = 2")
        again = Project.load(tmp_path)
        again.ingest()
        assert lake_rows(again, "select * from silver.prices order by id") == source_rows(
            database, "select * from prices order by id"
        )
        assert count(again, "select count(*) from silver.customers") == count_source(database, "customers")
    finally:
        with psycopg.connect(database, autocommit=True) as con:
            con.execute("DROP TABLE prices")


def count_source(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as con:
        (rows,) = con.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
    return int(rows)
