"""The Iceberg catalog and the run history in a real Postgres instead of SQLite files: the retail
pipeline builds the same lake, every table is in Postgres's catalog tables, every run in its
history, and the database's password (a secret reference) appears in no output."""

from __future__ import annotations

import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from lagoa.core.time import Interval
from lagoa.orchestrate.project import Project
from tests.conftest import copy_example, lake_rows
from tests.postgres import postgres_server

DAY = Interval(datetime(2024, 6, 1, tzinfo=UTC), datetime(2024, 6, 2, tzinfo=UTC))
PASSWORD = "c4t/alog+pw"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with postgres_server() as uri:
        yield uri


def _database(server: str, name: str) -> str:
    """A new database with a user who needs a password; a libpq URI of it (password left out)."""
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}"')
        con.execute(f'CREATE DATABASE "{name}"')
        if not con.execute("SELECT 1 FROM pg_roles WHERE rolname = 'lagoa_catalog'").fetchone():
            con.execute(f"CREATE ROLE lagoa_catalog LOGIN PASSWORD '{PASSWORD}'")
        con.execute(f'ALTER DATABASE "{name}" OWNER TO lagoa_catalog')
    query = urllib.parse.urlsplit(server).query
    return f"postgresql://lagoa_catalog:${{env:CATALOG_PASSWORD}}@/{name}?{query}"


def test_the_retail_pipeline_on_a_postgres_catalog_and_history_builds_the_same_lake(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_PASSWORD", urllib.parse.quote(PASSWORD, safe=""))
    uri = _database(server, "retail")
    local = Project.load(copy_example("retail_lakehouse", tmp_path / "local"))
    assert local.run(["daily"], interval=DAY).succeeded

    folder = copy_example("retail_lakehouse", tmp_path / "postgres")
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(f'{config}\ncatalog: {{uri: "{uri}"}}\nstate: {{uri: "{uri}"}}\n')
    done = subprocess.run(
        [sys.executable, "-m", "lagoa", "run", "daily", "--date", "2024-06-01", "-p", str(folder)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert PASSWORD not in done.stdout + done.stderr
    assert not (folder / ".lagoa" / "catalog.db").exists() and not (folder / ".lagoa" / "state.db").exists()

    on_postgres = Project.load(folder)
    try:
        tables = sorted(t.identifier for t in local.tables())
        assert sorted(t.identifier for t in on_postgres.tables()) == tables
        for table in tables:
            assert lake_rows(on_postgres, table) == lake_rows(local, table), table
    finally:
        on_postgres.close()

    dsn = uri.replace("${env:CATALOG_PASSWORD}", urllib.parse.quote(PASSWORD, safe=""))
    with psycopg.connect(dsn) as con:
        catalogued = {
            f"{namespace}.{name}"
            for namespace, name in con.execute("SELECT table_namespace, table_name FROM iceberg_tables")
        }
        runs = con.execute("SELECT pipeline, state FROM lagoa_runs").fetchall()
    assert catalogued == set(tables)
    assert runs == [("daily", "succeeded")]

    shown = subprocess.run(
        [sys.executable, "-m", "lagoa", "doctor", "-p", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "iceberg catalog" in shown.stdout
    assert PASSWORD not in shown.stdout + shown.stderr
    assert urllib.parse.quote(PASSWORD, safe="") not in shown.stdout + shown.stderr


def test_a_catalog_that_cannot_be_opened_is_a_clean_error_without_the_password(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CATALOG_PASSWORD", urllib.parse.quote(PASSWORD, safe=""))
    uri = _database(server, "present").replace("/present?", "/absent?")  # no such database
    folder = copy_example("orders_summary", tmp_path / "orders")
    config = (folder / "lagoa.yml").read_text()
    (folder / "lagoa.yml").write_text(f'{config}\ncatalog: {{uri: "{uri}"}}\n')
    done = subprocess.run(
        [sys.executable, "-m", "lagoa", "tables", "-p", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0
    assert "cannot open the Iceberg catalog" in done.stderr and '"absent" does not exist' in done.stderr
    assert "Traceback" not in done.stderr
    for form in (PASSWORD, urllib.parse.quote(PASSWORD, safe="")):
        assert form not in done.stdout + done.stderr
